"""`make tutorial`: every step's README, then every notebook, in order, against one MySQL.

Each step's README shell blocks run as a reader types them (see tutorial_kit.readme for the
convention), in a copy of the step folder under the build folder, against databases of its
own; the transcript is printed and saved to build/transcript.txt. Then the notebooks are
executed into build/notebooks/.
"""

from __future__ import annotations

import argparse
import sys
import time

from tutorial_kit.mysql import NoServerError, find_server
from tutorial_kit.readme import ReadmeError, ReadmeRun
from tutorial_kit.steps import REPO, STEPS, build_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true", help="run the steps only")
    args = parser.parse_args(argv)

    build = build_dir()
    build.mkdir(parents=True, exist_ok=True)
    try:
        server = find_server()
    except NoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with server, (build / "transcript.txt").open("w") as transcript:
        print(f"MySQL: {server.source}", flush=True)

        def say(text: str = "") -> None:
            print(text, flush=True)
            transcript.write(text + "\n")

        readmes = ReadmeRun(server, build / "steps", say)
        for name in STEPS:
            if not (REPO / name / "README.md").is_file():
                continue
            started = time.perf_counter()
            say(f"\n=== {name}: the commands of {name}/README.md")
            try:
                readmes.step(name)
            except ReadmeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            say(f"=== {name}: ok in {time.perf_counter() - started:.1f} s")
        print(f"\nTranscript: {build / 'transcript.txt'}", flush=True)
        if not args.skip_notebooks:
            from tutorial_kit.notebooks import execute_all

            environ = {**server.environ, "TUTORIAL_BUILD_DIR": str(build)}
            execute_all(build / "notebooks", environ=environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
