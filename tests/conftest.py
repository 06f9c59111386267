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
