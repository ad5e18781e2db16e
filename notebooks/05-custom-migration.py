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
# # 05 · custom migration: data, written by hand
#
# automatic → versioned → generate → apply → new migration → **custom migration**
#
# Ent's "custom migrations". Autogenerate compares schemas; data, and anything it cannot see,
# you write yourself. `python -m migrate new` writes an empty revision and re-hashes; the reader fills
# it in; `upgrade` then refuses the edited file ("checksum mismatch") until `python -m migrate hash`
# records it, as Atlas does.
#
# | Python (this repository) | Go (Atlas) |
# |---|---|
# | `python -m migrate new seed_users` | `atlas migrate new seed_users` |
# | `op.execute(users.insert()...)` | `INSERT INTO users ...` in the .sql file |
# | `python -m migrate hash` | `atlas migrate hash` |
#
# First you run the step, as a reader does; then, at the end, how it works: what it changes,
# file by file.

# %%
from tutorial_kit.notebook import Tutorial

t = Tutorial("05-custom-migration")

# %% [markdown]
# ## Production, as step 4 left it, with a Jerry of its own
#
# `create_all()`, a thousand users, baselined (step 3), `add_user_title` applied (step 4):
# `t.production` replays what notebooks 03 and 04 did. And one more user: production already
# has a `jerry@seinfeld.io`, a doctor.

# %%
production, dev = t.production(through="step-4-new-migration")
urls = dict(database_url=production, dev_database_url=dev)
t.sql(production, "INSERT INTO users (name, email, title) VALUES ('Jerome Seinfeld', 'jerry@seinfeld.io', 'Dr.')")
before = t.query(production, "SELECT id, name, email, title FROM users ORDER BY id")

# %% [markdown]
# ## Deploy the seed
#
# The upgrade inserts George, leaves the doctor as he is, and fails on nothing:

# %%
seeded = t.copy("step-5-custom-migration")
t.sh(seeded, "python -m migrate status", **urls, expect=3)  # exit status 3: PENDING
t.sh(seeded, "python -m migrate upgrade", **urls)
t.sql(production, "SELECT id, name, email, title FROM users WHERE email IN ('jerry@seinfeld.io', 'george@costanza.io')")
after = t.query(production, "SELECT id, name, email, title FROM users ORDER BY id")
assert after[1][: len(before[1])] == before[1], "a user changed"
print(f"Every user who was there is unchanged ({len(before[1])}); added: {len(after[1]) - len(before[1])}.")

# %% [markdown]
# What the history recorded of it, and why the downgrade can be exact: the INSERT it ran, with
# its values. The downgrade removes George, and only George:

# %%
t.sql(production, "SELECT revision, kind, statements, applied_sql FROM alembic_history ORDER BY id DESC LIMIT 1")
t.sh(seeded, "python -m alembic downgrade -1", **urls)
assert t.query(production, "SELECT id, name, email, title FROM users ORDER BY id") == before
print("After the downgrade, the users are exactly those from before the upgrade.")
t.sh(seeded, "python -m migrate upgrade", **urls)

# %% [markdown]
# ## `new`, an edit, and the checksum
#
# Now write a revision by hand the way `seed_users` was written, in the same copy, tried on a
# scratch database. The edit makes the file differ from `revisions.sum`: `upgrade` names it
# and refuses, until it is re-hashed.

# %%
app = seeded
scratch = t.database("scratch")
t.sh(app, "python -m migrate new add_more_users")
[more] = (app / "migrations" / "versions").glob("*_add_more_users.py")
t.edit(more, '    """Upgrade schema."""\n    pass',
       '    """Upgrade schema."""\n    op.execute("UPDATE users SET title = \'Ms.\' WHERE email = \'ada@example.com\'")')
t.sh(app, "python -m migrate upgrade", database_url=scratch, expect=1)
t.sh(app, "python -m migrate hash")
t.sh(app, "python -m migrate upgrade", database_url=scratch)

# %% [markdown]
# Next: [06-verify-safety](06-verify-safety.ipynb) makes `title` required, and lints the
# revision before it reaches production.

# %% [markdown]
# ## How it works: what changed since `step-4-new-migration/`
#
# `diff -ruN step-4-new-migration step-5-custom-migration`, file by file:

# %%
step = t.changes("step-4-new-migration", "step-5-custom-migration")

# %% [markdown]
# ### `migrate/__main__.py`: the `new` command
#
# An empty revision after the head, named by the time like the planner's, then re-hashed. It
# refuses a directory that already differs from its checksums: re-hashing must not bless someone
# else's unreviewed edit.

# %%
step.show("migrate/__main__.py")

# %% [markdown]
# ### `seed_users`: the revision written by hand
#
# Jerry Seinfeld and George Costanza, as on Ent's page. Written for a real production database:
# a user who is already there with one of those emails is neither duplicated nor changed, and
# the downgrade deletes only the users its upgrade inserted, which `alembic_history` recorded
# (`op.inline_literal` writes the values into the SQL it records).

# %%
[seed] = [name for name in step.files if name.endswith("_seed_users.py")]
step.show(seed, "migrations/revisions.sum")
step.show("README.md", collapsed=True)
