# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · big tables: ALTERs that copy, handed to pt-online-schema-change
#
# automatic → versioned → generate → apply → new migration → custom migration → verify → **big tables**
#
# Beyond Ent's tutorial, and what comes next in production. Step 6 showed what each ALTER costs.
# Some changes the server can only make by copying the whole table: a column's type or
# character set, the primary key, a stored generated column. While it copies, every write to
# the table waits: on millions of rows, minutes of an app that cannot save anything.
# Production teams hand those to an online schema change tool, Percona's
# `pt-online-schema-change` or GitHub's gh-ost: it copies the table in small chunks while
# triggers carry every write across, then swaps the two in one `RENAME`.
#
# Step 7's `python -m migrate upgrade` does that hand-off itself, for the ALTERs that need it,
# and records it like any statement. The change: `users.email` becomes `VARCHAR(320)` in
# ASCII, a COPY on MySQL and MariaDB alike, on a table that `blogs.author_id` references.
#
# | Python (this repository) | elsewhere |
# |---|---|
# | `online_min_rows`, `online_tool` in `alembic.ini` (or `-x`) | Skeema's `alter-wrapper-min-size`, `alter-wrapper` |
# | `migrate/online.py`: the route of each ALTER | Skeema's alter-wrapper; gh-ost and Spirit are the same idea |
# | `alembic_online_alters` | the tool's own log, kept |

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("07-big-tables")

# %% [markdown]
# ## Production, as step 6 left it
#
# Five thousand users, each with a post. Here "big" starts at 1,000 rows, set for this copy
# in its `alembic.ini` (the shipped value is 100,000), so the tool's route can be seen in
# seconds.

# %%
production, dev = t.production(through="step-6-verify-safety", users=5000)
urls = dict(database_url=production, dev_database_url=dev)
app = t.copy("step-7-big-tables")
t.edit(app / "alembic.ini", "online_min_rows = 100000", "online_min_rows = 1000")
t.sql(production, "SELECT COUNT(*) AS users FROM users")
before = t.query(production, "SELECT id, name, email, title FROM users ORDER BY id")

# %% [markdown]
# ## Lint: which way `upgrade` will run the ALTER
#
# Beside the algorithm the server allows (asked on the dev database: INSTANT, INPLACE, all
# refused; only COPY), lint now says the route: with `DATABASE_URL` it counts production's
# rows, reading only, and looks for the tool. It also warns that ASCII cannot hold every
# character utf8mb4 can (MF106), and reads production's addresses: all of them fit.

# %%
t.sh(app, "python -m migrate lint --latest 1", **urls)

# %% [markdown]
# ## A row the copy cannot take
#
# Between lint and the deploy, someone signs up as `zoë@example.com`, which ASCII cannot hold.
# Deploy: the tool's copy fails on that row. `upgrade` removes what the tool left (its
# triggers, `_users_new`), counts the rows, records the failure, and says so in one line.

# %%
t.sql(production, "UPDATE users SET email = 'zoë@example.com' WHERE email = 'user7@example.com'")
t.sh(app, "python -m migrate upgrade", **urls, expect=1)
t.sql(production, "SHOW TABLES")
t.sql(production, "SELECT COUNT(*) AS triggers FROM information_schema.TRIGGERS "
                  "WHERE TRIGGER_SCHEMA = DATABASE()")
t.sh(app, "python -m migrate status", **urls, expect=4)

# %% [markdown]
# Production is as it was: the same rows, the old column. Lint, run now, finds the row (it
# would have stopped the deploy in CI):

# %%
t.sh(app, "python -m migrate lint --latest 1", **urls, expect=1)

# %% [markdown]
# The fix is in the data, not in the revision (which did nothing): here, the address the user
# gave before its accent was typed.

# %%
t.sql(production, "UPDATE users SET email = 'user7@example.com' WHERE email = 'zoë@example.com'")

# %% [markdown]
# ## Deploy, through the tool
#
# The rerun goes on from the failed attempt (no statement of it had been applied). The ALTER
# goes to `pt-online-schema-change`, dry run first, then for real; writes to `users` would have
# gone on all along.

# %%
t.sh(app, "python -m migrate upgrade", **urls)
t.sh(app, "python -m migrate status", **urls)  # the hand-offs: alembic_online_alters
t.sql(production, "SHOW CREATE TABLE users")
assert t.query(production, "SELECT id, name, email, title FROM users ORDER BY id") == before
print(f"Every user is still there, unchanged: {len(before[1])}.")

# %% [markdown]
# ## On a big table
#
# Here the copy took a second either way. Measured by `make bench`
# (`python scripts/bench.py --online`) with 1,000,000 users while the app writes to `users` 50
# times a second, each write timed; 2 cores, 2026-11-28:
#
# | | MariaDB 10.11.19, pt-osc 3.2.1 | MySQL 9.7.4, pt-osc 3.7.1 |
# |---|---|---|
# | as written: total time | 4.6 s | 10.4 s |
# | as written: longest write wait | 3.75 s (the copy) | 9.28 s (the copy) |
# | through the tool: total time | 10.8 s | 11.3 s |
# | through the tool: longest write wait | 0.65 s | 0.05 s |
#
# The tool takes longer, and no write waits for the copy. Every row was there after each run.

# %% [markdown]
# ## How it works: what changed since `step-6-verify-safety/`
#
# `diff -ruN step-6-verify-safety step-7-big-tables`, file by file:

# %%
step = t.changes("step-6-verify-safety", "step-7-big-tables")

# %% [markdown]
# ### `models.py` and `widen_user_email`: the change, planned by `generate`

# %%
[revision] = [name for name in step.files if name.endswith("_widen_user_email.py")]
step.show("models.py", revision, "migrations/revisions.sum")

# %% [markdown]
# ### `alembic.ini`: when an ALTER counts as big, and which tool

# %%
step.show("alembic.ini")

# %% [markdown]
# ### `migrate/online.py`: the route of each ALTER, and the hand-off
#
# For an `ALTER TABLE` on a table of at least `online_min_rows` rows, production is asked
# whether it can make the change without blocking writes (the statement with
# `ALGORITHM=INSTANT`, then `INPLACE, LOCK=NONE`: a server refuses what it cannot honour and
# changes nothing). Refused every time, the statement goes to the tool, with the password in a
# private file, never on its command line. After a failure, it removes what the tool left.
# `migrate/history.py` sends every DDL statement through it, `migrations/env.py` hands it the
# settings, `migrate/lint.py` prints its route and `status` lists the hand-offs.
# `migrate/lint_checks.py` adds MF106, with its read-only count of the values that would not
# survive the new character set.

# %%
step.show("migrate/online.py", "migrate/history.py", "migrations/env.py", "migrate/revisions.py",
          "migrate/lint.py", "migrate/lint_checks.py", "migrate/__main__.py")

# %%
step.show("README.md", collapsed=True)
