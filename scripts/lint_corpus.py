"""`make lint-corpus`: step 6's lint against tests/lint_corpus; prints recall, precision, crashes.

Uses DATABASE_URL's server when set, else finds or starts one as the tests do.
"""

import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tutorial_kit import find_server  # noqa: E402
from tutorial_kit.lint_corpus import load, measure, report  # noqa: E402
from tutorial_kit.steps import lazy_ca_certificates  # noqa: E402


def main() -> int:
    lazy_ca_certificates()  # as the tests do: each connection's TLS set-up made cheap
    cases = load()
    with find_server() as server:
        outcomes = measure(server, cases)
    print(report(outcomes))
    print(f"Measured on {date.today().isoformat()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
