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
# # 00 · start: the app migrates itself
#
# **automatic** → versioned → generate → apply
#
# Our demo app is a blog: users write posts. Like many Python projects it creates its own
# schema at start-up with `Base.metadata.create_all(engine)`: *automatic migration*, the
# Python counterpart of Ent's `client.Schema.Create(ctx)`. This notebook runs the app from
# `start/` against a live MySQL, looks at what it created, and then shows where this approach
# stops being enough.
#
# | Python (this repository) | Go (Ent) |
# |---|---|
# | `Base.metadata.create_all(engine)` | `client.Schema.Create(ctx)` |
# | `models.py`: `User`, `Blog` with `Mapped[...]` | `ent/schema/user.go`, `blog.go` |
# | `python main.py` | `go run main.go` |

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("00-start")  # finds MySQL: DATABASE_URL, compose, a container or a local server

# %% [markdown]
# ## The code
#
# The models: `User(id, name, email unique)` writes many `Blog(id, title, body, created_at)`.
# The foreign key says `ON DELETE SET NULL`: deleting a user keeps their posts.

# %%
app = t.copy("start")  # a copy to work in: the repository stays as it is
t.show(app / "models.py")

# %% [markdown]
# `main.py` connects to `DATABASE_URL`, creates whatever tables are missing, makes sure the demo
# post exists, and prints users with their posts.

# %%
t.show(app / "main.py")

# %% [markdown]
# ## Run it
#
# A terminal would say `export DATABASE_URL=mysql+pymysql://...` and `python main.py`; here
# `t.sh` does the same in the folder, against a database of this notebook's. Twice: the second
# run finds the tables and the demo post, and adds nothing.

# %%
db = t.database("start")
t.sh(app, "python main.py", database_url=db)
t.sh(app, "python main.py", database_url=db)

# %% [markdown]
# ## What MySQL now holds

# %%
t.sql(db, "SHOW TABLES")
t.sql(db, "SHOW CREATE TABLE users")
t.sql(db, "SHOW CREATE TABLE blogs")

# %%
t.sql(db, "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM blogs) AS blogs")

# %% [markdown]
# Nothing in the database says which version of the schema this is, or what ran to make it.
#
# ## Where automatic migration stops
#
# The product wants posts' authors to carry a title ("Mr.", "Dr."). Add the column to the model
# and run the app again on the same database. It crashes; of its long traceback, the last line
# is the one that matters: MySQL knows no column `users.title`.

# %%
email = "    email: Mapped[str] = mapped_column(String(255), unique=True)\n"
title = "    title: Mapped[str | None] = mapped_column(String(255))\n"
t.edit(app / "models.py", email, email + title)
t.sh(app, "python main.py", database_url=db, expect=1)

# %% [markdown]
# `create_all()` only creates tables that are missing; it never alters one that exists. The
# column never reached the database:

# %%
t.sql(db, "SHOW COLUMNS FROM users")

# %% [markdown]
# The same goes for a rename, a new constraint, a changed type. Production databases need changes
# that are planned, reviewed, recorded and applied by a tool: *versioned migrations*. Next:
# [01-versioned](01-versioned.ipynb) sets up Alembic.
