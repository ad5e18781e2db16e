"""Which `pt-online-schema-change` works with a given server (step 7, `make bench`, the tests).

percona-toolkit 3.2.1 (Debian bookworm) works with MariaDB 10.11 but not with MySQL 9.x (it
asks for SHOW SLAVE HOSTS, which 8.4 removed); 3.7.1 (Debian sid) does. scripts/mysql-root.sh
puts a 3.7.1 wrapper beside the MySQL 9.7 `mysqld` it prints, so for a server started through
TUTORIAL_MYSQLD the tool beside that binary comes first, then the one on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tutorial_kit.mysql import BINARY_VARIABLE, Server

TOOL = "pt-online-schema-change"


def is_mariadb(server: Server) -> bool:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return "mariadb" in cur.fetchone()[0].lower()


def online_tool(server: Server) -> Path | None:
    """The pt-online-schema-change to use with `server`, or None when this machine has none."""
    if not is_mariadb(server):
        binary = os.environ.get(BINARY_VARIABLE, "").strip()
        beside = Path(binary).parent / TOOL if binary else None
        if beside is not None and os.access(beside, os.X_OK):
            return beside
    found = shutil.which(TOOL)
    return Path(found) if found else None


def tool_folder(server: Server, folder: Path) -> Path | None:
    """`folder`, holding a link named pt-online-schema-change to online_tool(server): put it on
    PATH before the system's folders, and step 7 runs the tool that works with `server`, as a
    reader who installed it would. None when this machine has none (the step then says the tool
    is missing and alters as written)."""
    tool = online_tool(server)
    if tool is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / TOOL).symlink_to(tool)
    except FileExistsError:
        pass
    return folder
