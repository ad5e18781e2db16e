"""`python -m tutorial_kit serve` (or `make server`): a MySQL server to follow the tutorial by hand;
`python -m tutorial_kit follow | check | fill | reset`: your own copy, my-app/ (tutorial_kit.follow).

It finds a server the kit's usual way (DATABASE_URL, the compose service, a container, a local
mysqld/mariadbd), creates the `app` and `dev` databases on it, and prints the two `export` lines
that the step READMEs start with. A server the kit started runs until Ctrl-C (or SIGTERM), then
stops and removes its data; it also goes when this command is killed (tutorial_kit.reaper).
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below: a Ctrl-C while they load is one line too
    from tutorial_kit.interrupt import until_ready

    until_ready("python -m tutorial_kit")

import argparse
import signal
import sys

from tutorial_kit.mysql import NoServerError, Server, find_server
from tutorial_kit.reaper import watch
from tutorial_kit.steps import url_text

DATABASES = {"DATABASE_URL": "app", "DEV_DATABASE_URL": "dev"}


USAGE = "python -m tutorial_kit serve | follow STEP | check | fill NAME | reset"


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"error: {message} (usage: {USAGE})\n")


def export_lines(server: Server, *, started: bool) -> list[str]:
    """The README's two `export` lines, for this server's `app` and `dev` databases."""
    lines = []
    for variable, database in DATABASES.items():
        url = server.url.set(database=database)
        # A server the kit started has a password no one else uses; yours stays hidden.
        text = url_text(url) if started else url.render_as_string(hide_password=True)
        lines.append(f"export {variable}={text}")
    return lines


STOP = {signal.SIGINT, signal.SIGTERM}


def serve() -> int:
    # Ctrl-C is taken by sigwait() below; until then it waits, so set-up is never half-done.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP)
    try:
        server = find_server()
    except NoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = server.pid is not None or server._stop is not None
    watch(server)
    try:
        with server.connect() as conn, conn.cursor() as cur:
            for database in DATABASES.values():
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        print(f"MySQL: {server.source}, with the databases app and dev.")
        print("Paste these lines into the terminal where you follow the tutorial:\n")
        print("\n".join(export_lines(server, started=started)))
        if not started:
            print("\nThat server is not the kit's: it keeps running (*** stands for its password).")
            return 0
        print("\nThis server runs until Ctrl-C; then it stops and its data is removed.", flush=True)
        signal.sigwait(STOP)  # blocked since start-up: no Ctrl-C is lost, none interrupts
        print("Stopping MySQL.", flush=True)
        return 0
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    from tutorial_kit import follow

    parser = Parser(prog="python -m tutorial_kit", description="The tutorial's own commands.",
                    epilog=follow.__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    commands.add_parser("serve", help="start (or find) a MySQL server, print its export lines, "
                        "run until Ctrl-C (make server)")
    step = commands.add_parser("follow", help="start my-app/ (STEP=start), or bring in the hand-"
                               "written changes of STEP")
    step.add_argument("step", metavar="STEP", help="start, step-1-versioned, ... step-7-big-tables")
    commands.add_parser("check", help="compare my-app's revisions with its step's: the same operations?")
    name = commands.add_parser("fill", help="write the step's hand-written body into your revision NAME")
    name.add_argument("name", metavar="NAME", help="the revision's name, e.g. seed_users")
    commands.add_parser("reset", help="remove my-app/ and empty the app and dev databases")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return follow.run(args.command, getattr(args, "step", None) or getattr(args, "name", None))


if __name__ == "__main__":
    sys.exit(main())
