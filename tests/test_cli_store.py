"""``courseport init | courses | populate | status`` as a user runs them (subprocess)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_error, cli_env, dump_file
from courseport import __version__
from courseport.courses.site import Site
from courseport.datastore import open_store


def _db(home: Path) -> Path:
    return home / "courseport.db"


@pytest.fixture(scope="module")
def initialised_template(tmp_path_factory) -> Path:
    """A COURSEPORT_HOME after `courseport init`, made once and copied per test."""
    template = tmp_path_factory.mktemp("template") / "home"
    template.mkdir()
    proc = subprocess.run([sys.executable, "-m", "courseport", "init"], env=cli_env(template),
                          cwd=template.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return template


@pytest.fixture
def initialised(home: Path, initialised_template: Path) -> Path:
    shutil.rmtree(home)
    shutil.copytree(initialised_template, home)
    return home


# --- init ---------------------------------------------------------------------------------------


def test_init_creates_the_store_and_installs_the_sample(home: Path, run_cli) -> None:
    proc = run_cli("init")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert str(_db(home)) in proc.stdout
    assert "/sample" in proc.stdout and "An Introduction to Data Privacy" in proc.stdout
    assert _db(home).is_file()
    with open_store("local", create=False) as store:
        assert store.app_id == "courseport"
        course = Site(store).course("/sample")
        assert course.title == "An Introduction to Data Privacy"
        assert store.count("QuestionEntity", "ns_sample") > 0


def test_init_again_is_idempotent(initialised: Path, run_cli) -> None:
    before = dump_file(_db(initialised))
    proc = run_cli("init")
    assert proc.returncode == 0, proc.stderr
    assert "already installed" in proc.stdout
    assert dump_file(_db(initialised)) == before


def test_init_with_app_id(home: Path, run_cli) -> None:
    proc = run_cli("init", "--app_id", "dev~mycourse")
    assert proc.returncode == 0, proc.stderr
    assert "dev~mycourse" in proc.stdout
    with open_store("local") as store:
        assert store.app_id == "dev~mycourse"
    again = run_cli("init", "--app_id", "dev~mycourse")
    assert again.returncode == 0, again.stderr


def test_init_with_another_app_id_fails(initialised: Path, run_cli) -> None:
    before = dump_file(_db(initialised))
    line = assert_one_line_error(run_cli("init", "--app_id", "other"))
    assert "'courseport'" in line and "'other'" in line
    assert dump_file(_db(initialised)) == before


# --- courses ------------------------------------------------------------------------------------


def test_courses_add_and_list(initialised: Path, run_cli) -> None:
    proc = run_cli("courses", "add", "/physics", "--title", "Physics")
    assert proc.returncode == 0, proc.stderr
    assert "course:/physics::ns_physics" in proc.stdout
    listing = run_cli("courses", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert any(re.match(r"^/physics\s+course:/physics::ns_physics\s+Physics$", line) for line in lines), lines
    assert any(line.startswith("/sample") and "An Introduction to Data Privacy" in line for line in lines)


def test_courses_add_existing_fails_and_changes_nothing(initialised: Path, run_cli) -> None:
    assert run_cli("courses", "add", "/physics", "--title", "Physics").returncode == 0
    before = dump_file(_db(initialised))
    line = assert_one_line_error(run_cli("courses", "add", "/physics"))
    assert "already exists" in line
    assert dump_file(_db(initialised)) == before


def test_courses_list_without_courses(home: Path, run_cli) -> None:
    proc = run_cli("courses", "list")
    assert proc.returncode == 0
    assert "courseport init" in proc.stdout


# --- errors: one line on stderr, nothing on stdout, the store as it was ------------------------------


@pytest.mark.parametrize("args, expected", [
    (["courses", "add", "/Bad!"], "course name"),
    (["courses", "add", "/a"], "2 to 99"),
    (["courses", "add", "/sample"], "already exists"),
    (["populate", "/nope", "--students", "3"], "no course found"),
    (["populate", "/te", "--students", "3"], "no course found"),
    (["populate", "/sample", "--students", "0"], "at least 1"),
    (["populate", "/sample", "--students", "-5"], "at least 1"),
    (["init", "--app_id", "other"], "app id"),
])
def test_errors_are_one_line_and_change_nothing(initialised: Path, run_cli, args, expected) -> None:
    before = dump_file(_db(initialised))
    files_before = sorted(p.name for p in initialised.iterdir())
    line = assert_one_line_error(run_cli(*args))
    assert expected in line.lower()
    assert line.startswith("courseport: error: ")
    assert dump_file(_db(initialised)) == before
    assert sorted(p.name for p in initialised.iterdir()) == files_before


def test_populate_twice_fails(initialised: Path, run_cli) -> None:
    assert run_cli("populate", "/sample", "--students", "3").returncode == 0
    before = dump_file(_db(initialised))
    line = assert_one_line_error(run_cli("populate", "/sample", "--students", "3"))
    assert "already has 3 students" in line
    assert dump_file(_db(initialised)) == before


@pytest.mark.parametrize("args", [["populate", "/sample", "--students", "3"], ["status"]])
def test_before_init_tells_to_run_init_and_creates_nothing(home: Path, run_cli, args) -> None:
    line = assert_one_line_error(run_cli(*args))
    assert "courseport init" in line
    assert list(home.iterdir()) == []


def test_store_that_is_not_sqlite(tmp_path: Path, run_cli) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not a database\n" * 100)
    content = bogus.read_bytes()
    for args in (["status"], ["init"], ["courses", "list"], ["populate", "/sample", "--students", "2"]):
        line = assert_one_line_error(run_cli(*args, "--datastore", f"sqlite:///{bogus}"))
        assert str(bogus) in line
    assert bogus.read_bytes() == content


def test_unknown_datastore_url(home: Path, run_cli) -> None:
    line = assert_one_line_error(run_cli("status", "--datastore", "mysql://db/x"))
    assert "mysql://db/x" in line
    assert list(home.iterdir()) == []


# --- populate and status --------------------------------------------------------------------------


def _status_counts(stdout: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    current = None
    for line in stdout.splitlines():
        course = re.match(r"^(/\S*)\s+course:", line)
        if course:
            current = counts.setdefault(course.group(1), {})
            continue
        row = re.match(r"^\s+(\w+)\s+([\d,]+)$", line)
        if row and current is not None:
            current[row.group(1)] = int(row.group(2).replace(",", ""))
    return counts


def test_populate_then_status(initialised: Path, run_cli) -> None:
    proc = run_cli("populate", "/sample", "--students", "12", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    assert "12 students" in proc.stdout and "entities/s" in proc.stdout
    status = run_cli("status")
    assert status.returncode == 0, status.stderr
    assert str(_db(initialised)) in status.stdout
    counts = _status_counts(status.stdout)
    with open_store("local", create=False) as store:
        expected = {kind: store.count(kind, "ns_sample") for kind in store.kinds("ns_sample")}
    assert counts["/sample"] == expected
    assert counts["/sample"]["Student"] == 12
    assert counts["/sample"]["StudentPropertyEntity"] == 12
    assert counts["/sample"]["EventEntity"] > 12


def test_explicit_datastore_url(home: Path, tmp_path: Path, run_cli) -> None:
    db = tmp_path / "stores" / "x.db"
    url = f"sqlite:///{db}"
    init = run_cli("init", "--datastore", url)
    assert init.returncode == 0, init.stderr
    assert db.is_file()
    added = run_cli("courses", "add", "/physics", "--title", "Physics", "--datastore", url)
    assert added.returncode == 0, added.stderr
    listing = run_cli("courses", "list", "--datastore", url)
    assert "/physics" in listing.stdout and "/sample" in listing.stdout
    pop = run_cli("populate", "/physics", "--students", "4", "--datastore", url)
    assert pop.returncode == 0, pop.stderr
    status = run_cli("status", "--datastore", url)
    assert status.returncode == 0, status.stderr
    counts = _status_counts(status.stdout)
    assert counts["/physics"]["Student"] == 4
    assert "Student" not in counts["/sample"]
    # the local store under COURSEPORT_HOME was never touched
    assert list(home.iterdir()) == []
    assert_one_line_error(run_cli("status"))


def test_populate_seed_is_deterministic_across_runs(tmp_path: Path, run_cli) -> None:
    dumps = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        assert run_cli("init", "--datastore", url).returncode == 0
        assert run_cli("populate", "/sample", "--students", "5", "--seed", "9", "--datastore", url).returncode == 0
        dump = dump_file(tmp_path / f"{name}.db")
        dumps.append({t: rows for t, rows in dump.items() if t == "entities"})
    rows_a = [r for r in dumps[0]["entities"] if r[1] != "FileMetadataEntity"]
    rows_b = [r for r in dumps[1]["entities"] if r[1] != "FileMetadataEntity"]
    assert rows_a == rows_b


# --- the program ---------------------------------------------------------------------------------


def test_version(run_cli) -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"courseport {__version__}"


def test_no_command_prints_help(run_cli) -> None:
    proc = run_cli()
    assert proc.returncode == 2
    assert "usage: courseport" in proc.stdout
