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
# # 01 · versioned: set up Alembic
#
# automatic → **versioned** → generate → apply
#
# Ent's "enable versioned migrations" turns on a code-generation flag so the project can plan
# migrations. In Python the tool is Alembic, configured against the models' `MetaData`. This
# step adds Alembic's scaffolding and nothing else: no revision yet, and the app still calls
# `create_all()`.
#
# | Python (this repository) | Go (Ent / Atlas) |
# |---|---|
# | `alembic.ini`, `migrations/env.py` | `--feature sql/versioned-migration` in `ent/generate.go` |
# | `target_metadata = Base.metadata` | the Ent schema graph |
# | `migrations/versions/<time>_<name>.py` | `ent/migrate/migrations/<version>_<name>.sql` |
# | `python -m alembic history` | `atlas migrate status` |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("01-versioned")

# %% [markdown]
# ## Run it
#
# The app is unchanged: it still creates its tables.

# %%
app = t.copy("step-1-versioned")
db = t.database("step1")
t.sh(app, "python main.py", database_url=db)

# %% [markdown]
# Alembic now runs from the folder. There is no revision yet, so history and heads are empty.
# (`python -m alembic` works where the `alembic` script is not on `PATH`, as in a kernel.)

# %%
t.sh(app, "python -m alembic history", database_url=db)
t.sh(app, "python -m alembic heads", database_url=db)
t.sh(app, "python -m alembic current", database_url=db)

# %% [markdown]
# ## What MySQL holds
#
# `alembic current` looked for the version table and found none. The app's tables are still
# create_all()'s, unrecorded:

# %%
t.sql(db, "SHOW TABLES")

# %% [markdown]
# Next: [02-generate](02-generate.ipynb) writes the first revision from the models.

# %% [markdown]
# ## How it works: what changed since `start/`
#
# Computed from the two folders as they are now (`diff -ruN start step-1-versioned`), file by
# file:

# %%
step = t.changes("start", "step-1-versioned")

# %% [markdown]
# ### `requirements.txt`: Alembic joins the app

# %%
step.show("requirements.txt")

# %% [markdown]
# ### `alembic.ini`: where the migrations live, and how their files are named
#
# - **No URL here.** `env.py` reads `DATABASE_URL`, so no password is committed, and code
#   (tests, scripts) can hand in an Engine or a Connection instead.
# - **`file_template`** names revision files by time, then name, so they sort in the order they
#   were written, like Atlas's `<version>_<name>.sql`.

# %%
step.show("alembic.ini")

# %% [markdown]
# ### `migrations/env.py`: Alembic meets the models
#
# `target_metadata = Base.metadata`: autogenerate compares the database with the models. The
# database comes from `DATABASE_URL`, or from an Engine or Connection that code hands in through
# `config.attributes["connection"]`.

# %%
step.show("migrations/env.py")

# %% [markdown]
# ### `migrations/script.py.mako` and `migrations/versions/`
#
# The template each revision file is written from, as `alembic init` makes it, and the folder
# the revisions go to: empty for now (`.gitkeep` keeps it in git).

# %%
step.show("migrations/script.py.mako", "migrations/versions/.gitkeep")

# %% [markdown]
# ### `README.md`
#
# The step's own page says the same for a reader in a terminal (folded here: click to open).

# %%
step.show("README.md", collapsed=True)
