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
# # 02 · generate: plan migrations from the models
#
# automatic → versioned → **generate** → apply
#
# Ent's "automatic migration planning": `atlas migrate diff NAME --dev-url docker://mysql/8/dev`
# compares the schema with what the existing migrations build, on a throwaway *dev database*,
# and writes the difference as the next migration file. `python -m migrate generate NAME` does the same
# with Alembic's autogenerate.
#
# | Python (this repository) | Go (Atlas) |
# |---|---|
# | `python -m migrate generate NAME` | `atlas migrate diff NAME --dir ... --to ent://ent/schema` |
# | `DEV_DATABASE_URL` (or a MySQL container via the Docker SDK) | `--dev-url docker://mysql/8/dev` |
# | `migrations/versions/<time>_<name>.py` | `<version>_<name>.sql` + `atlas.sum` |
# | `python -m alembic upgrade head --sql` | reading the `.sql` file |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("02-generate")

# %% [markdown]
# ## How `initialize` was written
#
# In a copy of the folder, remove the revision and plan again. The planner creates a throwaway
# database beside the empty scratch database that `DEV_DATABASE_URL` names, replays the existing
# migrations there (none yet), compares with the models, writes the revision, applies it to the
# throwaway database to prove that it runs, prints the SQL, and drops the database.

# %%
app = t.copy("step-2-generate")
dev = t.database("dev")  # the empty scratch database, `dev` in docker-compose.yml
for revision in (app / "migrations" / "versions").glob("*.py"):
    revision.unlink()
t.sh(app, "python -m migrate generate initialize", dev_database_url=dev)

# %% [markdown]
# Plan again: the models and the migrations now agree, and nothing is written.

# %%
t.sh(app, "python -m migrate generate initialize", dev_database_url=dev)
t.sh(app, "python -m alembic history")

# %% [markdown]
# The scratch database is still empty, and no throwaway database was left behind:

# %%
t.sql(dev, "SHOW TABLES")
t.sql(dev, f"SHOW DATABASES LIKE '{dev.database}_plan_%'")

# %% [markdown]
# ## The SQL a revision runs
#
# Alembic's offline mode prints it without touching a database, the way you read Atlas's `.sql`
# files in review:

# %%
t.sh(app, "python -m alembic upgrade head --sql")

# %% [markdown]
# ## The next change: a new column
#
# Give users an optional `title` (Ent's "new migration" page), and plan `add_user_title`:

# %%
email = "    email: Mapped[str] = mapped_column(String(255), unique=True)\n"
title = "    title: Mapped[str | None] = mapped_column(String(255))\n"
t.edit(app / "models.py", email, email + title)
t.sh(app, "python -m migrate generate add_user_title", dev_database_url=dev)
[new] = (app / "migrations" / "versions").glob("*_add_user_title.py")
t.show(new)

# %% [markdown]
# The planner also recorded the new file in the checksum file, its hash chained after
# `initialize`'s:

# %%
t.show(app / "migrations" / "revisions.sum")

# %% [markdown]
# ## A rename is not a drop
#
# Rename `name` to `full_name` in the model. Autogenerate cannot tell a rename from a drop and an
# add: applied as such, every user's name would be gone. On a terminal the planner asks, as
# Django does: `Did you rename users.name to users.full_name? [y/N]`. Here, as in a script,
# there is no terminal: it writes nothing and says how to answer.

# %%
t.edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
t.sh(app, "python -m migrate generate rename_user_name", dev_database_url=dev, expect=1)

# %% [markdown]
# It is a rename. The revision renames the column in place, every value kept, and its downgrade
# renames it back:

# %%
t.sh(app, "python -m migrate generate rename_user_name --rename users.name=full_name", dev_database_url=dev)
[renamed] = (app / "migrations" / "versions").glob("*_rename_user_name.py")
t.show(renamed)

# %% [markdown]
# Always read a generated revision before committing it. Next: [03-apply](03-apply.ipynb) takes
# the migrations to a production database that `create_all()` made.

# %% [markdown]
# ## How it works: what changed since `step-1-versioned/`
#
# The planner, and the first revision it wrote (`diff -ruN step-1-versioned step-2-generate`):

# %%
step = t.changes("step-1-versioned", "step-2-generate")

# %% [markdown]
# ### `migrate/`: the tool, apart from the app
#
# The app stays `main.py`, `models.py` and `database.py`; the tooling lives in one package,
# `migrate/`, run as `python -m migrate COMMAND`.

# %%
step.show("migrate/__init__.py", "migrate/__main__.py")

# %% [markdown]
# ### `migrate/generate.py`: the command
#
# `python -m migrate generate NAME` is `atlas migrate diff NAME`. It plans on a throwaway database, never
# on the app's; asks before it writes a rename as a drop and an add (or, in a script, refuses
# until `--rename` or `--drop` answers); proves the new revision runs before it reports success;
# and records it in the checksum file.

# %%
step.show("migrate/generate.py")

# %% [markdown]
# ### `migrate/devdb.py`: the dev database
#
# Atlas's `--dev-url`. A throwaway database made beside the empty scratch database that
# `DEV_DATABASE_URL` names (it refuses one that holds tables: that might be the app's), or a
# MySQL 8.4 container when the variable is unset and Docker runs; dropped afterwards either way.

# %%
step.show("migrate/devdb.py")

# %% [markdown]
# ### `migrate/integrity.py` and `migrations/revisions.sum`: the checksum file
#
# Atlas's `atlas.sum`: a hash per revision file, each covering the files before it, and a first
# line that sums them all. `generate` writes it; from step 3 on, a revision added, edited or
# removed without re-hashing is refused before anything runs. Chained hashes make two branches
# that each add a revision conflict in git, instead of merging into two heads.

# %%
step.show("migrate/integrity.py", "migrations/revisions.sum")

# %% [markdown]
# ### `requirements.txt`: the Docker SDK, for the container fallback

# %%
step.show("requirements.txt")

# %% [markdown]
# ### The first revision: `initialize`
#
# What `python -m migrate generate initialize` wrote, reviewed and committed: it creates both tables with
# their keys, and drops them on the way down. It takes the place of `versions/.gitkeep`.

# %%
[initialize] = [name for name in step.files if name.endswith("_initialize.py")]
step.show(initialize, "migrations/versions/.gitkeep")

# %% [markdown]
# ### `README.md`
#
# The step's own page, for a reader in a terminal (folded here: click to open).

# %%
step.show("README.md", collapsed=True)
