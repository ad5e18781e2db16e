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
# # 04 · new migration: the loop from now on
#
# automatic → versioned → generate → apply → **new migration**
#
# Ent's "new migration": users get an optional `title`. From now on every schema change takes
# the same road: change the model, plan the revision on the dev database, read it, commit it,
# deploy. The new code refuses the old schema until `upgrade` has run.
#
# | Python (this repository) | Go (Atlas) |
# |---|---|
# | `title: Mapped[str \| None]` | `field.String("title").Optional()` |
# | `python -m migrate generate add_user_title` | `atlas migrate diff add_user_title` |
# | `python -m migrate upgrade` | `atlas migrate apply` |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("04-new-migration")

# %% [markdown]
# ## Production, as step 3 left it
#
# Made by `start/`'s `create_all()`, a thousand users and their posts, baselined at
# `initialize` by step 3.

# %%
production, dev = t.production(through="step-3-apply")
urls = dict(database_url=production, dev_database_url=dev)
app = t.copy("step-4-new-migration")
everything = ("SELECT id, name, email FROM users ORDER BY id; "
              "SELECT id, title, body, created_at, author_id FROM blogs ORDER BY id")
before = [t.query(production, q) for q in everything.split("; ")]

# %% [markdown]
# ## Deploy
#
# The new code refuses the old schema; `status` shows the one pending revision; `upgrade`
# applies it, under the lock, recorded in the history; then the app runs.

# %%
t.sh(app, "python main.py", **urls, expect=1)
t.sh(app, "python -m migrate status", **urls, expect=3)  # exit status 3: PENDING
t.sh(app, "python -m migrate upgrade", **urls)
t.sh(app, "python main.py", **urls)

# %% [markdown]
# Production has the new column, its history says when it came, and every row is still there:

# %%
t.sql(production, "SHOW CREATE TABLE users")
t.sql(production, "SELECT revision, kind, statements, execution_ms FROM alembic_history")
after = [t.query(production, q) for q in everything.split("; ")]
assert after == before, "rows changed"
print(f"Every row is still there, unchanged: {len(after[0][1])} users, {len(after[1][1])} posts.")

# %% [markdown]
# The planner agrees that nothing is left to plan, and plain Alembic that the models match:

# %%
t.sh(app, "python -m migrate generate add_user_title", dev_database_url=dev)
t.sh(app, "python -m alembic check", **urls)

# %% [markdown]
# Next: [05-custom-migration](05-custom-migration.ipynb) writes a migration autogenerate cannot:
# data.

# %% [markdown]
# ## How it works: what changed since `step-3-apply/`
#
# `diff -ruN step-3-apply step-4-new-migration`, file by file:

# %%
step = t.changes("step-3-apply", "step-4-new-migration")

# %% [markdown]
# ### `models.py`: the new field
#
# Optional, so the rows production already holds need no value.

# %%
step.show("models.py")

# %% [markdown]
# ### The revision `generate` planned, and the checksum file that records it
#
# `python -m migrate generate add_user_title` compared the models with what the migrations build on a
# throwaway database, and wrote one `op.add_column`: `ALTER TABLE users ADD COLUMN title
# VARCHAR(255)`, which Atlas writes as ``ALTER TABLE `users` ADD COLUMN `title` varchar(255)
# NULL``. It then chained the new file into `migrations/revisions.sum`.

# %%
[revision] = [name for name in step.files if name.endswith("_add_user_title.py")]
step.show(revision, "migrations/revisions.sum")

# %% [markdown]
# ### `main.py` shows the title, and `README.md`

# %%
step.show("main.py")
step.show("README.md", collapsed=True)
