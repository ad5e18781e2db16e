"""Step 6's lint against a labelled corpus (tests/lint_corpus/*.txt): recall, precision, crashes.

A case is a revision body in SQL (or `op.` lines) on top of step 6's head, what lint must
find, and optionally the revision before it (setup) and production's rows. Cases with rows are
linted with DATABASE_URL, then really applied to production: a "this revision will fail" must
fail there and nothing else may, and rows lint says would be lost must be gone.

    ## source: name
    setup:
      CREATE TABLE people (id int);
    lint:
      ALTER TABLE people ADD COLUMN name varchar(120) NOT NULL;
    rows:
      INSERT INTO people VALUES (1);
    expect: MY101

`expect:` lists codes (one per finding); `CODE!` is a finding the data proves will fail; FAIL
is the revision failing on the dev database. Where MySQL and MariaDB answer differently,
`expect on mysql:` or `expect on mariadb:` says what one of them gives, and `only: mariadb`
keeps a case to one server (INET6 is MariaDB's). Every statement ends its line with `;`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import copy_step, run

STEP = "step-6-verify-safety"
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "lint_corpus"
FINDING = re.compile(r"^  L\d+: ([A-Z]{2}\d{3}) (error|warning): .*\n(?:      data: (.*)\n)?", re.M)


@dataclass
class Case:
    name: str
    lint: list[str]
    expect: list[str]
    setup: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    on: dict[str, list[str]] = field(default_factory=dict)  # server -> what it gives instead
    only: str | None = None


@dataclass
class Outcome:
    case: Case
    found: list[str]
    crash: str | None = None  # a traceback, or an exit lint never gives
    wrong: list[str] = field(default_factory=list)  # data verdicts the real apply contradicts
    output: str = ""


def load(folder: Path = CORPUS) -> list[Case]:
    cases = []
    for path in sorted(folder.glob("*.txt")):
        case, block = None, None
        for line in path.read_text().splitlines():
            if line.startswith("## "):
                case = Case(f"{path.stem}/{line[3:].strip()}", [], [])
                cases.append(case)
            elif case is None or not line.strip() or line.startswith("#"):  # a note
                continue
            elif line.startswith("expect:"):
                case.expect = line.partition(":")[2].split()
                block = None
            elif line.startswith("expect on "):
                server, _, codes = line.removeprefix("expect on ").partition(":")
                case.on[server.strip()] = codes.split()
                block = None
            elif line.startswith("only:"):
                case.only = line.partition(":")[2].strip()
                block = None
            elif line.rstrip().endswith(":") and not line.startswith(" "):
                block = getattr(case, line.strip()[:-1])
            elif block is not None:
                block.append(line.strip())
    return cases


def body(lines: list[str]) -> str:
    """The Python of upgrade(): `op.` lines as written, each SQL statement in an op.execute."""
    out, statement = [], []
    for line in lines:
        if line.startswith("op.") and not statement:
            out.append(line)
            continue
        statement.append(line)
        if line.endswith(";"):
            out.append(f"op.execute({chr(10).join(statement)[:-1]!r})")
            statement = []
    return "\n".join(out) or "pass"


def run_case(server, case: Case) -> Outcome:
    tmp = Path(tempfile.mkdtemp(prefix="lint_corpus_"))
    dev = server.create_database("dev")
    prod = server.create_database("corpus") if case.rows else None
    try:
        app = copy_step(STEP, tmp)
        parent = max(p.stem.split("_")[0] for p in (app / "migrations" / "versions").glob("*.py"))
        # Hashed once for both revisions: every upgrade checks migrations/revisions.sum.
        if case.setup:
            parent = write_revision(app, "setup", body(case.setup), rehash=False)
        write_revision(app, "linted", body(case.lint), rehash=False)
        assert run(app, "-m", "migrate", "hash").returncode == 0
        if prod is not None:
            up = run(app, "-m", "alembic", "upgrade", parent, database_url=prod)
            if up.returncode != 0:
                return Outcome(case, [], crash=f"setup failed: {up.stderr.strip()[-300:]}")
            with server.connect(prod.database) as conn, conn.cursor() as cur:
                for statement in " ".join(case.rows).split(";"):
                    if statement.strip():
                        cur.execute(statement)
                conn.commit()
        result = run(app, "-m", "migrate", "lint", dev_database_url=dev, database_url=prod)
        output = result.stdout + result.stderr
        found = [code + ("!" if data and data.endswith("this revision will fail") else "")
                 for code, _, data in FINDING.findall(result.stdout)]
        if "the revision fails on the dev database" in result.stdout:
            found.append("FAIL")
        outcome = Outcome(case, found, output=output)
        if "Traceback" in output or result.returncode not in (0, 1) or result.stderr.strip():
            outcome.crash = (result.stderr.strip() or output).splitlines()[-1]
            return outcome
        if prod is not None and "FAIL" not in found:
            outcome.wrong = verify(server, app, prod, result.stdout, found)
        return outcome
    finally:
        server.drop_database(dev)
        if prod is not None:
            server.drop_database(prod)
        shutil.rmtree(tmp, ignore_errors=True)


def verify(server, app: Path, prod, lint_output: str, found: list[str]) -> list[str]:
    """Apply the revision to production: lint's data verdicts must come true."""
    predicted = any(code.endswith("!") for code in found)
    overwritten = re.findall(r"data: (\d+) rows? of (\w+) loses? its value in (\w+)", lint_output)
    with server.connect(prod.database) as conn, conn.cursor() as cur:
        before = {}
        for _, table, column in overwritten:  # the corpus's tables have an id column
            cur.execute(f"SELECT id, `{column}` FROM `{table}`")
            before[(table, column)] = dict(cur.fetchall())
    applied = run(app, "-m", "migrate", "upgrade", database_url=prod)
    wrong = []
    if predicted and applied.returncode == 0:
        wrong.append("predicted a failure, but the revision applied")
    if not predicted and applied.returncode != 0:
        wrong.append(f"applied with a failure lint did not predict: {applied.stderr.strip()[-200:]}")
    if applied.returncode != 0:
        return wrong
    with server.connect(prod.database) as conn, conn.cursor() as cur:
        for table, n in re.findall(r"data: (\w+) holds (\d+) row\(s\) that would be lost", lint_output):
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "DATABASE() AND TABLE_NAME = %s", (table,))
            if cur.fetchone()[0]:
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                if cur.fetchone()[0] != 0:
                    wrong.append(f"said {n} rows of {table} would be lost; they are still there")
        for n, table, column in re.findall(
                r"data: (\d+) rows? of (\w+) holds? a value in (\w+) that would be lost", lint_output):
            cur.execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                        "DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s", (table, column))
            if cur.fetchone()[0]:
                wrong.append(f"said {n} values of {table}.{column} would be lost; the column is there")
        for n, table, column in overwritten:
            cur.execute(f"SELECT id, `{column}` FROM `{table}`")
            after = dict(cur.fetchall())
            lost = sum(1 for key, value in before[(table, column)].items()
                       if value is not None and after.get(key) != value)
            if lost != int(n):
                wrong.append(f"said {n} values of {table}.{column} would be overwritten; {lost} were")
    return wrong


def measure(server, cases: list[Case], workers: int = 3) -> list[Outcome]:
    """Each case on `server`, with what that server should give (MySQL or MariaDB)."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        kind = "mariadb" if "mariadb" in cur.fetchone()[0].lower() else "mysql"
    cases = [Case(c.name, c.lint, c.on.get(kind, c.expect), c.setup, c.rows)
             for c in cases if c.only in (None, kind)]
    with ThreadPoolExecutor(workers) as pool:  # each case runs in processes of its own
        return list(pool.map(lambda case: run_case(server, case), cases))


def figures(outcomes: list[Outcome]) -> dict[str, float | int]:
    expected = found = matched = 0
    for o in outcomes:
        want, got = Counter(o.case.expect), Counter(o.found)
        expected, found = expected + sum(want.values()), found + sum(got.values())
        matched += sum((want & got).values())
    return {
        "cases": len(outcomes), "expected": expected, "found": found, "matched": matched,
        "recall": matched / expected if expected else 1.0,
        "precision": matched / found if found else 1.0,
        "crashes": sum(o.crash is not None for o in outcomes),
        "wrong verdicts": sum(len(o.wrong) for o in outcomes),
        "applied": sum(bool(o.case.rows) for o in outcomes),
    }


def report(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        if o.crash or o.wrong or Counter(o.case.expect) != Counter(o.found):
            lines.append(f"{o.case.name}: expected {' '.join(o.case.expect) or '-'}, found "
                         f"{' '.join(o.found) or '-'}" + (f"; CRASH {o.crash}" if o.crash else "")
                         + "".join(f"; WRONG {w}" for w in o.wrong))
    f = figures(outcomes)
    lines.append(
        f"{f['cases']} cases ({f['applied']} applied to production rows): recall "
        f"{f['matched']}/{f['expected']} = {f['recall']:.1%}, precision {f['matched']}/{f['found']} "
        f"= {f['precision']:.1%}, {f['crashes']} crash(es), {f['wrong verdicts']} data verdict(s) "
        "contradicted by the real apply")
    return "\n".join(lines)
