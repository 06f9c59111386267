"""Generated command lines: whatever a user types, courseport answers with a
result or a one-line error, never an internal error or a traceback.

Argument lists are drawn from the real commands, flags and values (good,
edge and hostile: huge and negative numbers, empty strings, NUL-free
control characters, unpaired surrogates, special paths) and run in this
process against a small real store.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import cli_at, db_path, make_store_template
from courseport import cli
from courseport.errors import EXIT_INTERNAL_ERROR

COMMANDS = ["download", "upload", "delete", "run", "verify", "init", "courses", "populate", "status", "bogus"]
TYPES = ["course", "datastore", "Course", "", "courseport.jobs.examples.StoreStats", "a.b", "x"]
PREFIXES = ["/sample", "/", "/nope", "sample", "/Sample", "/a/b", "/" + "x" * 120, "/ü", ""]
SERVERS = ["local", "sqlite:///{tmp}/other.db", "sqlite:///", "sqlite:///{tmp}", "localhost", "example.com",
           "datastore://proj", "datastore://Bad Proj", "datastore://s~proj", "datastore://proj?namespace_prefix=a\nb",
           "datastore://proj?database=x&database=y", "http://x", "", "dev~sample", "s~other"]
NUMBERS = ["0", "1", "-1", "20", "5000", "99999999999999999999", "1e3", "nan", "", " 7", "0x10", "١٢"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
WEIRD = st.sampled_from(["\udcff", "-", "--", "---x", "-h", "--help", "--version", "\t", "é", "%s", "{tmp}"])
PATHS = ["{tmp}/new.zip", "{tmp}/existing.zip", "{tmp}/dir", "{tmp}/missing/a.zip", "{tmp}", "", "{tmp}/fifo",
         "{tmp}/new_dir"]
FLAGS = {
    "--archive_path": st.sampled_from(PATHS), "--archive_type": st.sampled_from(["zip", "directory", "tar", ""]),
    "--batch_size": st.sampled_from(NUMBERS), "--datastore_types": st.sampled_from(
        ["Student", "Student,EventEntity", "Nope", ",", "Student,", ""]),
    "--exclude_types": st.sampled_from(["EventEntity", "Nope", ""]), "--privacy": None,
    "--privacy_secret": st.sampled_from(["s", "", "ü"]), "--resume": None, "--force_overwrite": None,
    "--no_static_files": None, "--verbose": None, "--internal": None, "--disable_remote": None,
    "--log_level": st.sampled_from(["debug", "INFO", "loud"]), "--port": st.sampled_from(NUMBERS),
    "--job_args": st.sampled_from(["", "a b", "{tmp}/handout.txt assets/x.txt"]),
    "--students": st.sampled_from(NUMBERS), "--seed": st.sampled_from(NUMBERS),
    "--datastore": st.sampled_from(SERVERS), "--app_id": st.sampled_from(["sample", "other", "", "dev~sample"]),
    "--title": TEXT,
}


@st.composite
def argument_lists(draw) -> list[str]:
    if draw(st.booleans()):
        return draw(well_formed())
    argv = [draw(st.sampled_from(COMMANDS))]
    if argv[0] == "courses":
        argv.append(draw(st.sampled_from(["add", "list", "remove", ""])))
    positional = [st.sampled_from(TYPES), st.sampled_from(PREFIXES), st.sampled_from(SERVERS),
                  st.sampled_from(SERVERS)]
    argv += [draw(s) for s in positional[: draw(st.integers(0, len(positional)))]]
    for _ in range(draw(st.integers(0, 5))):
        flag = draw(st.sampled_from(sorted(FLAGS)))
        if draw(st.booleans()):
            flag = flag.replace("_", "-")
        argv.append(flag)
        if FLAGS[flag.replace("-", "_").replace("__", "--", 1)] is not None:
            argv.append(draw(FLAGS[flag.replace("-", "_").replace("__", "--", 1)]))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(WEIRD, TEXT)))
    return argv


GOOD_NUMBERS = st.sampled_from(["1", "7", "20", "5000"])
DOWNLOAD_FLAGS = {
    "--batch_size": GOOD_NUMBERS, "--privacy": None, "--privacy_secret": st.sampled_from(["s", "ü"]),
    "--resume": None, "--force_overwrite": None, "--archive_type": st.sampled_from(["zip", "directory"]),
    "--datastore_types": st.sampled_from(["Student", "Student,EventEntity", "StudentPropertyEntity"]),
    "--exclude_types": st.sampled_from(["EventEntity", "Student"]), "--no_static_files": None,
}
UPLOAD_FLAGS = {key: DOWNLOAD_FLAGS[key] for key in ("--batch_size", "--resume", "--force_overwrite",
                                                     "--datastore_types", "--exclude_types")}


@st.composite
def well_formed(draw) -> list[str]:
    """An etl command of the right shape, so that most of them run for real."""
    mode = draw(st.sampled_from(["download", "download", "download", "upload", "upload", "delete", "verify"]))
    if mode == "verify":
        return ["verify", "--archive_path", draw(st.sampled_from(["{good}", "{tmp}/existing.zip", "{tmp}/dir"]))]
    argv = [mode, draw(st.sampled_from(["datastore", "datastore", "course"])),
            draw(st.sampled_from(["/sample"] * 5 + ["/nope"]))]
    argv += draw(st.sampled_from([["local"]] * 4 + [["courseport", "local"], ["other", "local"]]))
    flags = DOWNLOAD_FLAGS if mode == "download" else UPLOAD_FLAGS
    if mode == "download":
        argv += ["--archive_path", draw(st.sampled_from(["{tmp}/new.zip"] * 4 + ["{tmp}/new_dir", "{tmp}/dir",
                                                         "{tmp}/existing.zip", "{tmp}/fifo"]))]
    elif mode == "upload":
        argv += ["--archive_path", draw(st.sampled_from(["{good}"] * 4 + ["{tmp}/existing.zip", "{tmp}/dir"]))]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=3, unique=True)):
        argv.append(flag)
        if flags[flag] is not None:
            argv.append(draw(flags[flag]))
    return argv


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    home = make_store_template(tmp_path_factory.mktemp("generated") / "home", students=5, seed=1)
    good = home.parent / "good.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", good)
    assert proc.returncode == 0, proc.stderr
    return home


def _fresh_tmp(root: Path) -> Path:
    tmp = root / "t"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    (tmp / "existing.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (tmp / "dir").mkdir()
    (tmp / "handout.txt").write_text("x")
    os.mkfifo(tmp / "fifo")
    return tmp


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(argv=argument_lists(), confirm=st.booleans())
def test_any_command_line_is_a_result_or_one_line(world: Path, tmp_path: Path, monkeypatch, argv,
                                                  confirm) -> None:
    home = tmp_path / "home"
    if not home.exists():
        home.mkdir()
    shutil.copyfile(db_path(world), db_path(home))
    tmp = _fresh_tmp(tmp_path)
    argv = [a.replace("{tmp}", str(tmp)).replace("{good}", str(world.parent / "good.zip")) for a in argv]
    monkeypatch.setenv("COURSEPORT_HOME", str(home))
    monkeypatch.setenv("COURSEPORT_LOCK_WAIT", "0")
    monkeypatch.setattr(sys, "stdin", io.StringIO("YES, DELETE\n" if confirm else ""))
    # StringIO, not capsys: a real stderr writes undecodable arguments back with backslashes
    captured = SimpleNamespace(out=io.StringIO(), err=io.StringIO())
    monkeypatch.setattr(sys, "stdout", captured.out)
    monkeypatch.setattr(sys, "stderr", captured.err)
    try:
        status = cli.main(argv)
    except SystemExit as stop:  # argparse: -h, --version, or a usage error
        status = stop.code if isinstance(stop.code, int) else 1
    captured.out, captured.err = captured.out.getvalue(), captured.err.getvalue()
    event(f"{argv[0] if argv[0] in COMMANDS else 'other'}: exit {status}")
    assert status != EXIT_INTERNAL_ERROR, (argv, captured.err)
    assert status in (0, 1, 2), (argv, status, captured.err)
    assert "Traceback" not in captured.err, (argv, captured.err)
    if status == 1 and not (argv[0] == "verify" and ": BROKEN" in captured.out):  # verify reports on stdout
        errors = [line for line in captured.err.splitlines() if line.startswith("courseport")]
        assert len(errors) == 1, (argv, captured.err)
    assert (tmp / "fifo").exists() and not (tmp / "fifo").is_file()
