"""The migration tool of the app beside this folder: `python -m migrate --help` lists its commands.

The app is main.py, models.py, database.py, alembic.ini and migrations/; this package plans,
checks and applies the app's migrations, as Atlas's `atlas migrate ...` commands do. Like the
app, it reads DATABASE_URL and DEV_DATABASE_URL, nothing else.
"""

from pathlib import Path

# The app's folder, which holds alembic.ini and migrations/: the one this package sits in.
APP_DIR = Path(__file__).resolve().parent.parent
