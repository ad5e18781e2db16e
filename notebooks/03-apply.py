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
# # 03 · apply: migrate production
#
# automatic → versioned → generate → **apply**
#
# Ent's "upgrading production". The app stops calling `create_all()`; the migrations own the
# schema. Production, though, was made by `create_all()`: it has the tables and no migration
# history. `atlas migrate apply` refuses such a database ("connected database is not clean")
# until it is *baselined*: marked as already at the first version. We do the same, and one thing
# more: check that production really matches that version before marking it.
#
# | Python (this repository) | Go (Atlas) |
# |---|---|
# | `python -m migrate status` | `atlas migrate status` |
# | `python -m migrate upgrade` (under a MySQL named lock) | `atlas migrate apply` |
# | `python -m migrate baseline REV` (schema checked first) | `atlas migrate apply --baseline VERSION` |
# | `alembic_version` + `alembic_history` tables | `atlas_schema_revisions` table |
# | `python -m migrate hash` | `atlas migrate hash` |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial
from tutorial_kit.revisions import write_revision

t = Tutorial("03-apply")

# %% [markdown]
# ## Production, as automatic migration left it
#
# `start/` creates the schema; then a thousand users and their posts arrive.

# %%
start, app = t.copy("start"), t.copy("step-3-apply")
production, dev = t.database("production"), t.database("dev")
urls = dict(database_url=production, dev_database_url=dev)
t.sh(start, "python main.py", **urls)
# Rows made in Python work at any size; SQL's recursive CTE stops at 1,000 on MySQL and MariaDB.
users = [(f"User {i}", f"user{i}@example.com") for i in range(1, 1001)]
t.server.insert_rows(production, "users", ["name", "email"], users)
t.sql(production, "INSERT INTO blogs (title, body, author_id) SELECT CONCAT('Post by ', name), 'Hello.', id FROM users")
everything = ("SELECT id, name, email FROM users ORDER BY id; "
              "SELECT id, title, body, created_at, author_id FROM blogs ORDER BY id")
before = [t.query(production, q) for q in everything.split("; ")]  # every row, to compare later
t.sql(production, "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM blogs) AS blogs")

# %% [markdown]
# ## The new app refuses it; so does `upgrade`
#
# `main.py` checks the revision at start-up instead of creating tables. `upgrade` sees tables
# without a migration history, and refuses rather than try to create them again.

# %%
t.sh(app, "python main.py", **urls, expect=1)
t.sh(app, "python -m migrate status", **urls, expect=6)  # exit status 6: NOT MANAGED
t.sh(app, "python -m migrate upgrade", **urls, expect=1)

# %% [markdown]
# ## A database that drifted is not baselined
#
# Production databases drift: someone added a column by hand, dropped an index to speed up an
# import. Copy production, drift the copy, and try to baseline it at `initialize`. The planner's
# throwaway database builds `initialize`; the two schemas are compared; every difference is
# listed, and nothing is stamped.

# %%
[first] = (app / "migrations" / "versions").glob("*_initialize.py")
revision = first.stem.split("_")[0]
drifted = t.database("drifted")
t.sh(start, "python main.py", database_url=drifted)
t.sql(drifted, "ALTER TABLE users ADD COLUMN nickname VARCHAR(20)")
t.sql(drifted, "ALTER TABLE users DROP INDEX uq_users_email")
t.sh(app, f"python -m migrate baseline {revision}", database_url=drifted, dev_database_url=dev, expect=1)
t.sql(drifted, "SHOW TABLES LIKE 'alembic_version'")

# %% [markdown]
# ## Baseline production
#
# Production matches `initialize`, so `baseline` stamps it:

# %%
t.sh(app, f"python -m migrate baseline {revision}", **urls)
t.sh(app, "python -m migrate status", **urls)
t.sql(production, "SELECT * FROM alembic_version")

# %% [markdown]
# `status` now shows the history, Atlas's `atlas_schema_revisions`: the baseline, when, and a
# checksum of the revision file it trusted.

# %%
t.sql(production, "SELECT revision, kind, executed_at, statements, LEFT(checksum, 12) AS checksum FROM alembic_history")
after = [t.query(production, q) for q in everything.split("; ")]
assert after == before, "rows changed"
print(f"Every row is still there, unchanged: {len(after[0][1])} users, {len(after[1][1])} posts.")

# %% [markdown]
# ## When a revision fails half-way
#
# MySQL cannot roll DDL back. On a staging copy, a revision adds a column, then fails on its
# next statement: the column stays. The command says so in one line, `alembic_history` keeps
# it, and `status` shows it, as Atlas's "Last migration attempt had errors".

# %%
staging = t.database("staging")
t.sh(app, "python -m migrate upgrade", database_url=staging)
broken = write_revision(app, "add_nickname", rehash=False, upgrade="""\
    op.add_column("users", sa.Column("nickname", sa.String(40)))
    op.execute("UPDATE users SET nick_name = name")
""")
t.sh(app, "python -m migrate hash")
t.sh(app, "python -m migrate upgrade", database_url=staging, expect=1)
t.sh(app, "python -m migrate status", database_url=staging, expect=4)  # exit status 4: FAILED

# %% [markdown]
# The history knows which statements stayed applied, each with a running hash, so `upgrade`
# (and plain `alembic upgrade head`) go on where the attempt stopped, as Atlas's executor does:
# the `ALTER` is skipped, after checking it is the same statement, and the rest runs. Fix the
# revision (`nick_name` was a typo), re-hash, upgrade: the column is added once.

# %%
[path] = (app / "migrations" / "versions").glob(f"{broken}_*.py")
t.edit(path, "nick_name", "nickname")
t.sh(app, "python -m migrate hash")
t.sh(app, "python -m migrate upgrade", database_url=staging)
t.sql(staging, "SELECT revision, kind, statements, error FROM alembic_history")

# %% [markdown]
# Next: [04-new-migration](04-new-migration.ipynb) deploys a new revision to production, the
# way every change goes from now on.

# %% [markdown]
# ## How it works: what changed since `step-2-generate/`
#
# `diff -ruN step-2-generate step-3-apply`, file by file:

# %%
step = t.changes("step-2-generate", "step-3-apply")

# %% [markdown]
# ### `main.py`: no more `create_all()`
#
# The app stops migrating itself. At start-up it checks that the database is at the head
# revision, and exits with one line telling you to migrate when it is not.

# %%
step.show("main.py")

# %% [markdown]
# ### `migrate/revisions.py`: where a database stands
#
# The current revision, the head, what is pending, and whether the database holds the app's
# tables without any migration history: what `main.py` and `python -m migrate` both ask.

# %%
step.show("migrate/revisions.py")

# %% [markdown]
# ### `migrate/__main__.py`: status, upgrade, baseline, hash
#
# `atlas migrate status`, `apply`, `apply --baseline` and `hash`. `upgrade` refuses a database
# that `create_all()` made; `baseline` checks the schema before it stamps; `status` shows what
# ran and what failed; all three check the checksum file first.

# %%
step.show("migrate/__main__.py")

# %% [markdown]
# ### `migrations/env.py`, `migrate/lock.py`, `migrate/history.py`, `migrate/resolve.py`, `alembic.ini`: plain Alembic made as safe, exactly once
#
# Every alembic command, `python -m alembic upgrade head` as much as `python -m migrate upgrade`,
# checks the checksum file and the single head, runs under a MySQL named lock (`GET_LOCK`), so
# replicas deploying at once migrate one at a time, and records each statement of each revision
# in `alembic_history`, as Atlas's executor does in `atlas_schema_revisions`: a row before the
# first statement, then a count and a running SHA-256 after each one. A data statement commits
# with its bookkeeping; a DDL statement is recorded as starting, then as done. A rerun after a
# failure, a kill or a crash skips (hash-checked) what is applied and goes on: no statement runs
# twice. A DDL statement cut off between "starting" and "done" is settled on the dev database
# (`resolve.py`). Each DDL statement waits at most `lock_wait_timeout` seconds (`alembic.ini`)
# for a metadata lock, then is retried, naming who holds it.

# %%
step.show("migrations/env.py", "migrate/lock.py", "migrate/history.py", "migrate/resolve.py",
          "alembic.ini")

# %% [markdown]
# ### `migrate/sql.py` and `requirements.txt`: SQL read as SQL
#
# MySQL commits before every `ALTER`, `CREATE`, `DROP`, `RENAME` or `TRUNCATE`, so the history
# must know which statements of a failed revision stayed applied. It asks sqlglot's MySQL parser
# what each statement is: a comment in front (`/* step 2 */ ALTER TABLE ...`) or quoting does not
# fool it, as it would a look at the first word.

# %%
step.show("migrate/sql.py", "requirements.txt")

# %% [markdown]
# ### `migrate/integrity.py`: the checksum file, verified
#
# From this step on, the revision files must match `migrations/revisions.sum`: one edited, added
# or removed by hand is named, and refused until `python -m migrate hash`.

# %%
step.show("migrate/integrity.py")

# %% [markdown]
# ### `migrate/schema_compare.py`: what `baseline` checks
#
# Tables (engine, collation, comment), columns (type, nullability, default, auto-increment,
# collation, comment), primary keys, indexes, foreign keys with their `ON DELETE`, and CHECK
# constraints, on a planning database made with production's own character set and collation;
# normalised, so that MySQL's and MariaDB's spellings of the same thing compare equal.

# %%
step.show("migrate/schema_compare.py")

# %% [markdown]
# ### `README.md`
#
# The step's own page, for a reader in a terminal (folded here: click to open).

# %%
step.show("README.md", collapsed=True)
