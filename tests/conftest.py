"""Shared fixtures and helpers for courseport's behaviour tests.

``home``     a fresh, empty COURSEPORT_HOME (set in this process's environment)
``store``    a SqliteBackend in a tmp file, closed after the test
``run_cli``  runs ``python -m courseport ...`` as a subprocess against ``home``

Course Builder's own archives live beside the repository, in
``../shared/fixtures/coursebuilder``; tests that need them call
:func:`require_fixtures`, which skips when they are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = Path(__file__).resolve().parents[1] / "src"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"
FIXTURES_MISSING = "../shared/fixtures/coursebuilder absent: Course Builder fixtures are needed"


# --- Course Builder fixtures -------------------------------------------------


def require_fixtures() -> Path:
    """The fixtures folder, or skip the calling test when it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_MISSING)
    return FIXTURES


def model_members() -> list[str]:
    """Every ``models/<Kind>.json`` of every fixture archive, directory or zip.

    Directory members are named by their path under FIXTURES; zip members as
    ``<zip path>!<member>``. Empty when the fixtures are absent.
    """
    if not FIXTURES.is_dir():
        return []
    names = [p.relative_to(FIXTURES).as_posix() for p in sorted(FIXTURES.glob("*/*/models/*.json"))]
    for archive in sorted(FIXTURES.glob("*/*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in sorted(zf.namelist()):
                if member.startswith("models/") and member.endswith(".json"):
                    names.append(f"{archive.relative_to(FIXTURES).as_posix()}!{member}")
    return names


def read_member(name: str) -> bytes:
    root = require_fixtures()
    if "!" in name:
        archive, member = name.split("!", 1)
        with zipfile.ZipFile(root / archive) as zf:
            return zf.read(member)
    return (root / name).read_bytes()


def member_rows(name: str) -> list[dict[str, Any]]:
    return json.loads(read_member(name))["rows"]


def member_kind(name: str) -> str:
    return name.rsplit("/", 1)[-1][: -len(".json")]


def params_or_skip(values: list[Any]) -> list[Any]:
    """Parametrize values, or one skipped case when the fixtures are absent."""
    if values:
        return values
    return [pytest.param(None, marks=pytest.mark.skip(reason=FIXTURES_MISSING))]


# --- stores ----------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty COURSEPORT_HOME directory, set for this process and the CLI."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("COURSEPORT_HOME", str(path))
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    from courseport.datastore import SqliteBackend

    backend = SqliteBackend(tmp_path / "store.db")
    try:
        yield backend
    finally:
        backend.close()


def dump_raw(reader: Any) -> dict[tuple[str, str], list[tuple[Any, str]]]:
    """Every stored row as (key, data JSON text), per (namespace, kind)."""
    out: dict[tuple[str, str], list[tuple[Any, str]]] = {}
    for namespace in reader.namespaces():
        for kind in reader.kinds(namespace):
            rows: list[tuple[Any, str]] = []
            cursor = None
            while True:
                page, cursor = reader.fetch_raw_page(kind, namespace, cursor=cursor, limit=1000)
                rows.extend((row.key, row.data) for row in page)
                if cursor is None:
                    break
            out[(namespace, kind)] = rows
    return out


def dump_file(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a sqlite file: a store's whole state."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


# --- the command line ------------------------------------------------------------


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    env["COURSEPORT_HOME"] = str(home)
    return env


def python_env() -> dict[str, str]:
    """Environment for a child Python that imports courseport from src."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    return env


@pytest.fixture
def run_cli(home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli("init", "--app_id", "x")``: the CLI as a subprocess, text output."""

    def run(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "courseport", *map(str, args)],
            env=cli_env(home), cwd=home.parent, capture_output=True, text=True,
            timeout=timeout,
        )

    return run


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    """Exit 1, nothing on stdout, exactly one line on stderr; returns that line."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, repr(proc.stderr)
    line = proc.stderr.rstrip("\n")
    assert line.strip(), "empty error line"
    assert "Traceback" not in line
    return line


# --- etl behaviour tests (added) ---------------------------------------------------
#
# Stores under a tmp COURSEPORT_HOME, archives read member by member, the
# library entry points, and the "nothing was written" checks every error
# case makes.

DB_NAME = "courseport.db"
DATETIME_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def db_path(home: Path) -> Path:
    """The sqlite file of the ``local`` store under ``home``."""
    return home / DB_NAME


def snapshot_store(path: Path) -> dict[str, list[tuple]]:
    """Every row of every namespace of a sqlite store (every table, sorted).

    Entities of all namespaces, id counters, signatures and meta alike: two
    equal snapshots mean the store was not written to.
    """
    assert Path(path).is_file(), path
    return dump_file(Path(path))


def cli_at(home: Path, *args: Any, input: str | None = None, timeout: float = 120,
           extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m courseport ARGS`` against ``home``, with optional stdin text."""
    env = cli_env(home)
    if extra_env:
        env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "courseport", *map(str, args)],
        env=env, cwd=home.parent, capture_output=True, text=True, timeout=timeout,
        input=input if input is not None else "",
    )


def assert_error_line(proc: subprocess.CompletedProcess) -> str:
    """Exit 1 and exactly one line on stderr (stdout may hold a prompt or listing)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, repr(proc.stderr)
    line = proc.stderr.rstrip("\n")
    assert line.startswith("courseport: error: "), line
    assert "Traceback" not in line
    return line


def assert_no_archive(path: Path) -> None:
    """No archive, no ``.partial`` (nor its sidecars) next to it."""
    path = Path(path)
    left = sorted(p.name for p in path.parent.glob(path.name + "*")) if path.parent.is_dir() else []
    assert left == [], left


def make_store_template(root: Path, students: int = 20, seed: int = 0,
                        app_id: str | None = None) -> Path:
    """A COURSEPORT_HOME after ``courseport init`` (+ ``populate /sample``)."""
    root.mkdir(parents=True, exist_ok=True)
    args = ["init"] + (["--app_id", app_id] if app_id else [])
    for argv in [args] + ([["populate", "/sample", "--students", str(students), "--seed", str(seed)]]
                          if students else []):
        proc = subprocess.run([sys.executable, "-m", "courseport", *argv], env=cli_env(root),
                              cwd=root.parent, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose /sample course has 20 synthetic learners (seed 0); do not modify."""
    return make_store_template(tmp_path_factory.mktemp("sample_template") / "home")


@pytest.fixture
def sample_home(home: Path, sample_template: Path) -> Path:
    """``home`` holding a copy of :func:`sample_template`'s store."""
    shutil.copyfile(db_path(sample_template), db_path(home))
    return home


def open_local(home: Path) -> Any:
    """The etl LocalSite over ``home``'s store (close it after use)."""
    from courseport.datastore import SqliteBackend
    from courseport.sites import LocalSite

    return LocalSite(SqliteBackend(db_path(home), create=False))


def etl(*argv: Any, stdin: str | None = None) -> Any:
    """Run one etl command in this process, as the command line does (no subprocess).

    The command line's own parsing and its own call of the library
    (``courseport.etl.commands.call``), without progress bars, with ``stdin``
    as delete's answer and its listing discarded. Uses the store under
    ``$COURSEPORT_HOME`` (``home`` sets it). Returns the library call's result
    (a Download/Upload/DeleteResult); errors are raised.
    """
    import io

    from courseport.etl.args import parse_args
    from courseport.etl.commands import call

    args = parse_args([str(a) for a in argv])
    return call(args, progress=False, stdin=io.StringIO(stdin or ""), stdout=io.StringIO())


def archive_members(path: Path) -> dict[str, bytes]:
    """Every member of a zip or directory archive, by name."""
    path = Path(path)
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes()
                for p in sorted(path.rglob("*")) if p.is_file()}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert len(names) == len(set(names)), f"duplicate members in {path}"
        return {name: zf.read(name) for name in names}


def rows_of(data: bytes) -> list[dict[str, Any]]:
    doc = json.loads(data)
    assert set(doc) == {"rows"}, set(doc)
    return doc["rows"]


def kind_rows(members: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    """``models/<Kind>.json`` members parsed, by kind."""
    return {name[len("models/"):-len(".json")]: rows_of(data)
            for name, data in members.items()
            if name.startswith("models/") and name.endswith(".json")}


def without(row: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in fields}


def write_zip(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]],
              compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip with exactly these members (a list may repeat a name)."""
    import warnings

    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some tests
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in items:
                zf.writestr(name, data)
    return path


def rows_member(rows: list[dict[str, Any]]) -> bytes:
    """A ``models/<Kind>.json`` member in Course Builder's framing."""
    if not rows:
        return b'{"rows": [\n]}\n'
    body = ",\n".join("    " + json.dumps(row) for row in rows)
    return ('{"rows": [\n' + body + "\n]}\n").encode("ascii")


def manifest_for(names: list[str], raw: str = "course:/x::ns_x") -> bytes:
    entries = [{"is_draft": False, "path": name} for name in sorted(names)]
    return json.dumps({"entities": entries, "raw": raw, "version": "1.3"},
                      indent=2, sort_keys=True).encode("ascii")
