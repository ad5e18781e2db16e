"""The README-block runner: its convention, on small READMEs written here.

That every step README's blocks run, as written, is checked on the real READMEs by
test_notebooks.py's tutorial run (`make tutorial` runs them all).
"""

from pathlib import Path

import pytest

from tutorial_kit.readme import Handoff, ReadmeError, ReadmeRun, parse, split_comment
from tutorial_kit.steps import REPO, STEPS


def write_step(root: Path, name: str, readme: str, **files: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(readme)
    for file, text in files.items():
        (folder / file).write_text(text)


def test_convention_is_read_from_the_markdown(tmp_path):
    write_step(tmp_path, "before", "# before\n")
    write_step(tmp_path, "step", """# step

```sh
python -m pip install -r requirements.txt
export DATABASE_URL=mysql+pymysql://root:pass@127.0.0.1:3306/app
python main.py \\
    --flag   # one command on two lines
# a comment line
python -m migrate upgrade    # error: ... run `python -m migrate baseline REV`
echo "a # inside quotes"  # and a comment
```

<!-- not run: needs Docker -->
```sh
docker compose up -d
```

<!-- run after: before -->
```bash
python main.py
```

<!-- follow along -->
```sh
python -m tutorial_kit follow step
```

```python
print("never run: not a shell block")
```
""")
    first, skipped, after, follow = parse(tmp_path / "step" / "README.md")
    assert [c.text for c in first.commands] == [
        "python -m pip install -r requirements.txt",
        "export DATABASE_URL=mysql+pymysql://root:pass@127.0.0.1:3306/app",
        "python main.py      --flag",
        "python -m migrate upgrade",
        'echo "a # inside quotes"',
    ]
    assert [c.expects_failure for c in first.commands] == [False, False, False, True, False]
    assert first.commands[0].skipped and not first.commands[2].skipped
    assert first.commands[3].line == 9
    assert skipped.not_run == "needs Docker" and skipped.run_after == ()
    assert after.run_after == ("before",) and after.not_run is None and not after.follow
    assert follow.follow and [c.text for c in follow.commands] == ["python -m tutorial_kit follow step"]


def test_a_comment_exit_n_expects_that_exit_status():
    """`python -m migrate status  # exit 3: PENDING`: status is a deploy gate (step 3)."""
    from tutorial_kit.readme import Command

    assert Command(1, "python -m migrate status", "exit 3: PENDING, 1: rev").expected_status == 3
    assert Command(1, "python -m migrate status", "Pending: 1").expected_status is None
    assert Command(1, "python -m migrate status", "exits early").expected_status is None


def test_split_comment_respects_quotes():
    assert split_comment("echo '#not' # yes") == ("echo '#not'", "yes")
    assert split_comment("echo a#b") == ("echo a#b", "")
    assert split_comment("# all comment") == ("", "all comment")


@pytest.mark.parametrize(
    "directive, message",
    [
        ("<!-- run before: start -->", "unknown directive"),
        ("<!-- follow along: start -->", "unknown directive"),
        ("<!-- run after: nowhere -->", r"no step folder \['nowhere'\]"),
    ],
)
def test_bad_directive_is_named(tmp_path, directive, message):
    write_step(tmp_path, "step", f"{directive}\n```sh\necho hi\n```\n")
    with pytest.raises(ReadmeError, match=message):
        parse(tmp_path / "step" / "README.md")


@pytest.mark.parametrize("step", [s for s in STEPS if (REPO / s / "README.md").exists()])
def test_every_step_readme_has_commands_to_run(step):
    blocks = [b for b in parse(REPO / step / "README.md") if not b.not_run]
    assert any(not c.skipped for b in blocks for c in b.commands), step


def run_step(server, root: Path, name: str) -> list[str]:
    transcript: list[str] = []
    ReadmeRun(server, root / "work", transcript.append, root=root).step(name)
    return transcript


SHOW_DATABASE = 'python -c "import os; print(os.environ[\'DATABASE_URL\'].rsplit(\'/\', 1)[1])"'


def test_runs_in_a_copy_against_the_kits_databases(server, tmp_path):
    write_step(tmp_path, "earlier", f"""```sh
export DATABASE_URL=mysql+pymysql://root:pass@127.0.0.1:3306/app
python -c "open('made-by-earlier', 'w')"
{SHOW_DATABASE}
```
""")
    write_step(tmp_path, "step", f"""```sh
export DATABASE_URL=mysql+pymysql://root:pass@127.0.0.1:3306/app
export GREETING=hello
{SHOW_DATABASE}
python -c "import os; print(os.environ['GREETING'])"
python -c "open('written', 'w')"
python -c "import sys; sys.exit(3)"   # error: exits 3
python -c "import sys; sys.exit(sys.stdin.read() != '')"
echo yes | python -c "print('answer', input())"
```

<!-- run after: earlier -->
```sh
{SHOW_DATABASE}
cd sub
python -c "import os; print(os.getcwd())"
```
""")
    (tmp_path / "step" / "sub").mkdir()
    out = run_step(server, tmp_path, "step")
    names = [line.strip() for line in out if line.strip().startswith("app_")]
    # The README's `app` became the kit's: one for the first block, a fresh one after `earlier`.
    assert len(names) == 3 and names[0] != names[1] == names[2]
    assert "    hello" in out
    assert "    [exit status 3, as the README shows]" in out
    assert "    answer yes" in out  # no terminal to read from, but a pipe works
    assert str(tmp_path / "work" / "step" / "step" / "sub") in "\n".join(out)
    assert (tmp_path / "work" / "step" / "step" / "written").exists()  # in the copy,
    assert not (tmp_path / "step" / "written").exists()  # not in the step folder
    assert list((tmp_path / "work").rglob("made-by-earlier"))
    with server.connect() as conn, conn.cursor() as cur:  # the run's databases are dropped
        cur.execute("SHOW DATABASES")
        assert not {n for (n,) in cur.fetchall()} & set(names)


@pytest.mark.parametrize(
    "line, message",
    [
        ('python -c "import sys; sys.exit(2)"', "README.md:2: `python -c .*` exited 2"),
        ('python -c "pass"   # error: refused', "succeeded; the README shows it failing"),
        ('python -c "1/0"   # error: refused', "failed with a traceback"),
        ("cd nowhere", "no folder 'nowhere'"),
    ],
)
def test_a_command_that_does_not_do_what_the_readme_shows_stops_the_run(
    server, tmp_path, line, message
):
    write_step(tmp_path, "step", f"```sh\n{line}\necho never\n```\n")
    out: list[str] = []
    with pytest.raises(ReadmeError, match=message) as info:
        ReadmeRun(server, tmp_path / "work", out.append, root=tmp_path).step("step")
    assert "\n" not in str(info.value)
    assert "    never" not in out


def walk_with_handoff(server, root: Path, names: list[str], handoff: Handoff) -> dict[str, object]:
    """Walk `names` side by side as `make tutorial` does: each name's transcript or error."""
    from concurrent.futures import ThreadPoolExecutor

    def walk(name):
        out: list[str] = []
        try:
            ReadmeRun(server, root / "work", out.append, root=root, handoff=handoff).step(name)
        except ReadmeError as exc:
            return exc
        return out

    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(walk, names)))


CREATE_MARK = ('python -c "import os, pymysql, sqlalchemy.engine as e; u = e.make_url('
               "os.environ['DATABASE_URL']); c = pymysql.connect(host=u.host, port=u.port, "
               "user=u.username, password=u.password or '', database=u.database); "
               "c.cursor().execute('CREATE TABLE mark (n INT)')\"")
SHOW_TABLES = ('python -c "import os, pymysql, sqlalchemy.engine as e; u = e.make_url('
               "os.environ['DATABASE_URL']); c = pymysql.connect(host=u.host, port=u.port, "
               "user=u.username, password=u.password or '', database=u.database); cur = c.cursor(); "
               "cur.execute('SHOW TABLES'); print('tables', [r[0] for r in cur.fetchall()])\"")


def test_in_the_tutorial_a_step_goes_on_from_the_databases_the_previous_walk_left(server, tmp_path):
    write_step(tmp_path, "earlier", f"```sh\nexport DATABASE_URL=x\n{CREATE_MARK}\n{SHOW_DATABASE}\n```\n")
    write_step(tmp_path, "later", f"""```sh
export DATABASE_URL=x
{SHOW_TABLES}
```
<!-- run after: earlier -->
```sh
{SHOW_DATABASE}
{SHOW_TABLES}
```
""")
    out = walk_with_handoff(server, tmp_path, ["earlier", "later"], Handoff(["earlier"]))
    earlier, later = out["earlier"], out["later"]
    # earlier's commands ran once, in its own walk; later took over the database it left.
    assert "# later/README.md:6: the databases earlier's walk left (its commands are above)" in later
    assert not any("CREATE TABLE mark" in line for line in later)
    assert [l.strip() for l in later if l.startswith("    tables")] == ["tables []", "tables ['mark']"]
    left = [l.strip() for l in earlier if l.strip().startswith("app_")]
    assert left == [l.strip() for l in later if l.strip().startswith("app_")]
    with server.connect() as conn, conn.cursor() as cur:  # and dropped it at its end
        cur.execute("SHOW DATABASES")
        assert left[0] not in {n for (n,) in cur.fetchall()}


def test_in_the_tutorial_a_failed_walk_fails_the_one_going_on_from_it(server, tmp_path):
    write_step(tmp_path, "earlier", "```sh\npython -c \"import time; time.sleep(0.5); raise SystemExit(2)\"\n```\n")
    write_step(tmp_path, "later", "```sh\necho first\n```\n<!-- run after: earlier -->\n```sh\necho never\n```\n")
    out = walk_with_handoff(server, tmp_path, ["earlier", "later"], Handoff(["earlier"]))
    assert "exited 2" in str(out["earlier"])
    assert isinstance(out["later"], ReadmeError) and "the walk of earlier failed" in str(out["later"])


def test_in_the_tutorial_what_nobody_took_over_is_dropped(server, tmp_path):
    write_step(tmp_path, "earlier", f"```sh\nexport DATABASE_URL=x\n{SHOW_DATABASE}\n```\n")
    handoff = Handoff(["earlier"])
    out = walk_with_handoff(server, tmp_path, ["earlier"], handoff)
    [left] = [l.strip() for l in out["earlier"] if l.strip().startswith("app_")]
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        assert left in {n for (n,) in cur.fetchall()}
        handoff.drop_leftovers()
        cur.execute("SHOW DATABASES")
        assert left not in {n for (n,) in cur.fetchall()}
