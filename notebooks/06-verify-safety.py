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
# # 06 · verifying safety: lint before production
#
# automatic → versioned → generate → apply → new migration → custom migration → **verify**
#
# Ent's "verifying migration safety". `title` becomes required. The planned revision is one
# `MODIFY ... NOT NULL`, and every user from before step 4 has a NULL title: applied as planned,
# it fails on production. `atlas migrate lint` warns; the fix is a back-fill in the same
# revision. Our linter judges what the revision does on the dev database, statement by
# statement, and more than Atlas's: with `DATABASE_URL` it asks production's data, reading only,
# and it asks the server what each ALTER will cost.
#
# | Python (this repository) | Go (Atlas) |
# |---|---|
# | `python -m migrate lint --latest 1` | `atlas migrate lint --latest 1 --dev-url ...` |
# | `# lint: ignore MF104 -- reason` | `-- atlas:nolint MF104` |
# | `.github/workflows/migrations.yml` | `ariga/atlas-action` (now behind a login) |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("06-verify-safety")

# %% [markdown]
# ## Production, as step 5 left it
#
# A thousand users from before step 4, so a thousand NULL titles, and the two seeded users.

# %%
production, dev = t.production(through="step-5-custom-migration")
urls = dict(database_url=production, dev_database_url=dev)
t.sql(production, "SELECT COUNT(*) AS users, SUM(title IS NULL) AS without_title FROM users")
before = t.query(production, "SELECT id, name, email FROM users ORDER BY id")

# %% [markdown]
# ## The revision as planned, linted
#
# In a copy of step 6, put the revision back the way `python -m migrate generate user_title_required` wrote
# it, without the back-fill, and re-hash:

# %%
app = t.copy("step-6-verify-safety")
[path] = (app / "migrations" / "versions").glob("*_user_title_required.py")
fix = path.read_text().split("    # Written by hand")[1].split("    # ### commands")[0]
backfill = "    # Written by hand" + fix
t.edit(path, backfill, "")
t.sh(app, "python -m migrate hash")

# %% [markdown]
# Lint, on the dev database alone: Atlas's MF104 warning, and what the ALTER costs. Then with
# `DATABASE_URL` (reading only): the data proves the revision would fail, so lint fails.

# %%
t.sh(app, "python -m migrate lint --latest 1", dev_database_url=dev)
t.sh(app, "python -m migrate lint --latest 1", **urls, expect=1)

# %% [markdown]
# ## The fix: back-fill in the same revision
#
# Write the `UPDATE` before the ALTER, as step 6's revision has it, and re-hash. Lint clears
# MF104, and the data check agrees:

# %%
upgrade = '    """Upgrade schema."""\n'
t.edit(path, upgrade, upgrade + backfill)
t.sh(app, "python -m migrate hash")
t.sh(app, "python -m migrate lint --latest 1", **urls)

# %% [markdown]
# ## Deploy

# %%
t.sh(app, "python -m migrate upgrade", **urls)
t.sh(app, "python main.py", **urls)
t.sql(production, "SELECT COUNT(*) AS users, SUM(title = '') AS back_filled FROM users")
assert t.query(production, "SELECT id, name, email FROM users ORDER BY id") == before
print(f"Every user is still there, unchanged but for the title: {len(before[1])}.")

# %% [markdown]
# ## On a big table
#
# Measured by `make bench`'s big-table run (`python scripts/bench.py --big-tables`) on
# MariaDB 10.11, 2 shared cores, with 1,000,000 users and 1,000,000 posts:
#
# | revision | statement | lint's verdict | time |
# |---|---|---|---|
# | add_user_title | `ADD COLUMN title` | INSTANT | 0.007 s |
# | user_title_required | back-fill `UPDATE ... WHERE title IS NULL` | (one transaction) | 7.0 s |
# | user_title_required | `MODIFY title ... NOT NULL` | INPLACE | 1.75 s |
#
# The back-fill is the slow part, and as one UPDATE it locks every row it touches until it
# commits. On a big table, back-fill in batches, each committed on its own (Alembic's
# `autocommit_block`), then ask for the ALTER's algorithm and lock explicitly, so that MySQL
# refuses it rather than silently blocking writes:
#
# ```python
# def upgrade() -> None:
#     with op.get_context().autocommit_block():  # each batch commits: short row locks
#         while op.get_bind().execute(sa.text(
#             "UPDATE users SET title = '' WHERE title IS NULL LIMIT 10000"
#         )).rowcount:
#             pass
#     op.execute("ALTER TABLE users MODIFY title VARCHAR(255) NOT NULL, ALGORITHM=INPLACE, LOCK=NONE")
# ```
#
# That is the end of Ent's tutorial. Notebook 07 goes on to what a big table needs: the ALTERs
# only a copy can do, handed to pt-online-schema-change. The pattern to copy into your own app
# is step 7's folder.

# %% [markdown]
# ## How it works: what changed since `step-5-custom-migration/`
#
# `diff -ruN step-5-custom-migration step-6-verify-safety`, file by file:

# %%
step = t.changes("step-5-custom-migration", "step-6-verify-safety")

# %% [markdown]
# ### `models.py`: the title becomes required, so `main.py`'s demo user needs one

# %%
step.show("models.py", "main.py")

# %% [markdown]
# ### `user_title_required`: planned, then back-filled by hand
#
# `generate` wrote the `alter_column`; the `UPDATE` before it was written by hand after lint
# warned (below), and the file re-hashed.

# %%
[revision] = [name for name in step.files if name.endswith("_user_title_required.py")]
step.show(revision, "migrations/revisions.sum")

# %% [markdown]
# ### `migrate/lint.py`, `migrate/lint_checks.py` and `python -m migrate lint`: the linter
#
# `migrate/lint.py` runs each revision on a throwaway database, records every statement the revision
# file runs, asks the server which `ALGORITHM` each ALTER allows (INSTANT, then INPLACE, then
# COPY: a server refuses one it cannot honour and changes nothing), and with `DATABASE_URL`
# checks the findings against the data in a read-only transaction. `migrate/lint_checks.py`
# holds the checks, with Atlas's codes; `migrate/lint_sql.py` reads each statement with sqlglot
# (a rename is one only when the statement says so); `migrate/sandbox.py` makes the MySQL user
# that replays the revision, allowed into the throwaway database only.

# %%
step.show("migrate/__main__.py", "migrate/lint.py", "migrate/lint_checks.py",
          "migrate/lint_sql.py", "migrate/sandbox.py")

# %% [markdown]
# ### `.github/workflows/migrations.yml`: the CI recipe
#
# On every pull request, a MySQL 8.4 service as the dev database: single head, the checksum file
# (`status`), lint of the revisions the pull request adds, an upgrade of a fresh database, and
# `alembic check`. The tests validate it against GitHub's workflow schema and run its steps.

# %%
step.show(".github/workflows/migrations.yml")
step.show("README.md", collapsed=True)
