"""etl's command line: every rule of ``courseport.etl.args`` (spec §1.1), one test each.

Rules are checked through :func:`parse_args` (cheap, parametrized); a
representative set runs through the real command line to show that a
broken rule is one line on stderr, exit status 1 and nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import (
    assert_no_archive,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    snapshot_store,
)
from courseport.etl.args import DEFAULT_BATCH_SIZE, EtlUsageError, parse_args
from courseport.etl.errors import EtlError


@pytest.fixture
def existing(tmp_path: Path) -> dict[str, Path]:
    """An existing file, an existing folder, and paths that do not exist."""
    f = tmp_path / "old.zip"
    f.write_bytes(b"old archive")
    d = tmp_path / "olddir"
    d.mkdir()
    return {"file": f, "dir": d, "new": tmp_path / "new.zip", "tmp": tmp_path}


def _argv(template: str, paths: dict[str, Path]) -> list[str]:
    return template.format(**{k: str(v) for k, v in paths.items()}).split()


# (rule id, argv template, a phrase the message must contain)
BROKEN_RULES = [
    ("archive path missing for download", "download course /sample local", "needs --archive_path"),
    ("archive path missing for upload", "upload datastore /sample local", "needs --archive_path"),
    ("batch size 0", "download course /sample local --archive_path {new} --batch_size 0",
     "--batch_size must be between 1 and 1,000,000"),
    ("batch size past 64 bits", "download course /sample local --archive_path {new} --batch_size 99999999999999999999",
     "--batch_size must be between 1 and 1,000,000"),
    ("batch size negative", "download datastore /sample local --archive_path {new} --batch_size -5",
     "--batch_size must be between 1 and 1,000,000"),
    ("batch size not a number", "download datastore /sample local --archive_path {new} --batch_size ten",
     "invalid int value"),
    ("download to an existing file", "download course /sample local --archive_path {file}",
     "already exists"),
    ("download to an existing directory", "download datastore /sample local --archive_path {dir}",
     "already exists"),
    ("--disable_remote with download", "download course /sample local --archive_path {new} --disable_remote",
     "--disable_remote is only allowed with run"),
    ("--disable_remote with delete", "delete datastore /sample local --disable_remote",
     "--disable_remote is only allowed with run"),
    ("--force_overwrite with delete", "delete datastore /sample local --force_overwrite",
     "--force_overwrite is only allowed with download or upload"),
    ("--force_overwrite with run", "run courseport.jobs.base.Job /sample local --force_overwrite",
     "--force_overwrite is only allowed with download or upload"),
    ("--privacy with download course", "download course /sample local --archive_path {new} --privacy",
     "--privacy is only allowed with download datastore"),
    ("--privacy with upload", "upload datastore /sample local --archive_path {file} --privacy",
     "--privacy is only allowed with download datastore"),
    ("--privacy with delete", "delete datastore /sample local --privacy",
     "--privacy is only allowed with download datastore"),
    ("--privacy_secret without --privacy",
     "download datastore /sample local --archive_path {new} --privacy_secret s3cret",
     "--privacy_secret is only allowed with download datastore --privacy"),
    ("--privacy_secret with upload", "upload datastore /sample local --archive_path {file} --privacy_secret s",
     "--privacy_secret is only allowed"),
    ("--privacy_secret with download course",
     "download course /sample local --archive_path {new} --privacy_secret s",
     "--privacy_secret is only allowed"),
    ("--resume with delete", "delete datastore /sample local --resume",
     "--resume is only allowed with download or upload"),
    ("--resume with run", "run courseport.jobs.base.Job /sample local --resume",
     "--resume is only allowed with download or upload"),
    ("--resume with --force_overwrite on download",
     "download datastore /sample local --archive_path {new} --resume --force_overwrite", "contradict"),
    ("--no_static_files with download datastore",
     "download datastore /sample local --archive_path {new} --no_static_files",
     "--no_static_files is only allowed with download course"),
    ("--no_static_files with upload course",
     "upload course /sample local --archive_path {file} --no_static_files",
     "--no_static_files is only allowed with download course"),
    ("bad mode", "fetch course /sample local --archive_path {new}", "invalid choice: 'fetch'"),
    ("bad type", "download courses /sample local --archive_path {new}",
     "type must be 'course' or 'datastore'"),
    ("run type not dotted", "run Job /sample local", "dotted path"),
    ("prefix without slash", "download course sample local --archive_path {new}", "must start with '/'"),
    ("too many positionals", "download course /sample app local extra --archive_path {new}",
     "too many positional arguments"),
    ("missing server", "download course /sample --archive_path {new}", "required"),
    ("port out of range", "download course /sample localhost --archive_path {new} --port 70000",
     "--port must be between 1 and 65535"),
    ("bad log level", "download course /sample local --archive_path {new} --log_level loud",
     "invalid choice: 'LOUD'"),
    ("bad archive type", "download course /sample local --archive_path {new} --archive_type tar",
     "invalid choice: 'tar'"),
    ("--datastore_types with course", "download course /sample local --archive_path {new} --datastore_types Student",
     "apply to the datastore type"),
    ("--exclude_types with course", "upload course /sample local --archive_path {file} --exclude_types Student",
     "apply to the datastore type"),
    ("empty kind name", "download datastore /sample local --archive_path {new} --datastore_types Student,,EventEntity",
     "empty kind name"),
    ("--job_args outside run", "download datastore /sample local --archive_path {new} --job_args x",
     "--job_args is only allowed with run"),
    ("empty --privacy_secret", "download datastore /sample local --archive_path {new} --privacy --privacy_secret=",
     "must not be empty"),
    ("upload from a missing archive", "upload datastore /sample local --archive_path {new}", "does not exist"),
    ("upload a file as a directory archive",
     "upload datastore /sample local --archive_path {file} --archive_type directory", "not a directory archive"),
    ("download over a file as a directory archive",
     "download datastore /sample local --archive_path {file} --force_overwrite --archive_type directory",
     "not a directory archive"),
    ("download into a missing folder", "download course /sample local --archive_path {tmp}/nope/new.zip",
     "does not exist"),
    ("unknown flag", "download course /sample local --archive_path {new} --frobnicate", "unrecognized arguments"),
]


@pytest.mark.parametrize("rule,template,phrase", BROKEN_RULES, ids=[r[0] for r in BROKEN_RULES])
def test_each_rule_is_enforced(rule: str, template: str, phrase: str, existing) -> None:
    with pytest.raises(EtlUsageError) as err:
        parse_args(_argv(template, existing))
    message = str(err.value)
    assert phrase in message, message
    assert "\n" not in message
    # a refused download writes nothing, not even a partial
    assert not existing["new"].exists()
    assert not list(existing["tmp"].glob("*.partial*"))


def test_download_into_unwritable_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(EtlUsageError, match="not writable"):
            parse_args(["download", "course", "/sample", "local", "--archive_path", str(folder / "a.zip")])
    finally:
        folder.chmod(0o755)


ACCEPTED = [
    ("defaults", "download course /sample local --archive_path {new}", {}),
    ("existing path with --force_overwrite", "download course /sample local --archive_path {file} --force_overwrite",
     {"force_overwrite": True}),
    ("existing path with --resume", "download datastore /sample local --archive_path {file} --resume",
     {"resume": True}),
    ("dashed --archive-path and --batch-size",
     "download datastore /sample local --archive-path {new} --batch-size 7", {"batch_size": 7}),
    ("dashed --datastore-types", "download datastore /sample local --archive-path {new} --datastore-types Student,EventEntity",
     {"datastore_types": ["Student", "EventEntity"]}),
    ("dashed --exclude-types", "download datastore /sample local --archive-path {new} --exclude-types EventEntity",
     {"exclude_types": ["EventEntity"]}),
    ("dashed --force-overwrite --privacy-secret",
     "download datastore /sample local --archive-path {file} --force-overwrite --privacy --privacy-secret s3cret",
     {"force_overwrite": True, "privacy": True, "privacy_secret": "s3cret"}),
    ("--log_level debug is upper-cased", "download course /sample local --archive_path {new} --log_level debug",
     {"log_level": "DEBUG"}),
    ("--log-level warning", "download course /sample local --archive_path {new} --log-level warning",
     {"log_level": "WARNING"}),
    ("application id positional", "download course /sample dev~sample local --archive_path {new}",
     {"application_id": "dev~sample", "server": "local"}),
    ("--disable_remote with run", "run courseport.jobs.base.Job /sample local --disable_remote",
     {"disable_remote": True}),
    ("--disable_remote with --internal", "download course /sample local --archive_path {new} --internal --disable_remote",
     {"disable_remote": True, "internal": True}),
    ("--no_static_files --internal", "download course /sample local --archive_path {new} --no_static_files --internal",
     {"no_static_files": True}),
    ("--job_args split on whitespace", "run courseport.jobs.base.Job /sample local --job_args a",
     {"job_args": ["a"]}),
    ("upload from a directory archive", "upload datastore /sample local --archive_path {dir}",
     {"archive_type": "directory"}),
    ("options before positionals", "--archive_path {new} --batch_size 3 download datastore /sample local",
     {"batch_size": 3, "mode": "download"}),
]


@pytest.mark.parametrize("case,template,expected", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_command_lines(case: str, template: str, expected: dict, existing) -> None:
    args = parse_args(_argv(template, existing))
    for name, value in expected.items():
        assert getattr(args, name) == value, name
    assert not existing["new"].exists()


def test_defaults() -> None:
    args = parse_args(["upload", "course", "/sample", "local", "--archive_path", __file__])
    assert args.batch_size == DEFAULT_BATCH_SIZE == 20
    assert args.log_level == "INFO" and args.archive_type == "zip" and args.port == 8081
    assert args.application_id is None and args.server == "local"
    assert args.datastore_types == [] and args.exclude_types == [] and args.job_args == []


def test_job_args_with_spaces_are_split() -> None:
    args = parse_args(["run", "courseport.jobs.base.Job", "/sample", "local",
                       "--job_args", "out.txt  --batch_size 3"])
    assert args.job_args == ["out.txt", "--batch_size", "3"]


# --- through the command line -----------------------------------------------------------------


@pytest.mark.parametrize("flags", [
    ["download", "course", "/sample", "local"],
    ["download", "course", "/sample", "local", "--archive_path", "{a}", "--batch_size", "0"],
    ["download", "courses", "/sample", "local", "--archive_path", "{a}"],
    ["delete", "datastore", "/sample", "local", "--force_overwrite"],
], ids=["no-archive-path", "batch-0", "bad-type", "force-delete"])
def test_cli_rule_is_one_line_and_writes_nothing(sample_home: Path, flags: list[str]) -> None:
    archive = sample_home.parent / "out.zip"
    before = snapshot_store(db_path(sample_home))
    proc = cli_at(sample_home, *[f.format(a=archive) for f in flags])
    line = assert_one_line_error(proc)
    assert line.startswith("courseport: error: ")
    assert_no_archive(archive)
    assert snapshot_store(db_path(sample_home)) == before


def test_cli_download_to_existing_path_leaves_it_alone(sample_home: Path) -> None:
    archive = sample_home.parent / "old.zip"
    archive.write_bytes(b"precious")
    line = assert_one_line_error(cli_at(sample_home, "download", "course", "/sample", "local",
                                        "--archive_path", archive))
    assert str(archive) in line and "--force_overwrite" in line and "--resume" in line
    assert archive.read_bytes() == b"precious"
    assert not list(sample_home.parent.glob("old.zip.*"))


def test_cli_bad_mode_is_one_line(sample_home: Path) -> None:
    archive = sample_home.parent / "out.zip"
    proc = cli_at(sample_home, "fetch", "course", "/sample", "local", "--archive_path", archive)
    assert_one_line_error(proc)
    assert_no_archive(archive)


def test_cli_help_exits_0_and_prints_usage(home: Path) -> None:
    proc = cli_at(home, "download", "-h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: courseport")
    for flag in ("--archive_path", "--batch_size", "--datastore_types", "--privacy_secret",
                 "--force_overwrite", "--resume", "--job_args", "--log_level"):
        assert flag in proc.stdout
    assert not (home / "courseport.db").exists()


def test_cli_dashed_spellings_work(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    proc = cli_at(sample_home, "download", "datastore", "/sample", "local", "--archive-path", archive,
                  "--batch-size", "3", "--datastore-types", "Student,StudentAnswersEntity",
                  "--log-level", "debug")
    assert proc.returncode == 0, proc.stderr
    import zipfile
    assert sorted(zipfile.ZipFile(archive).namelist()) == [
        "manifest.json", "models/Student.json", "models/StudentAnswersEntity.json"]


def test_cli_log_level_error_silences_progress(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    proc = cli_at(sample_home, "download", "datastore", "/sample", "local", "--archive_path", archive,
                  "--log_level", "error")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


# --- rules that need the target -----------------------------------------------------------------


@pytest.fixture
def sample_app_home(sample_home: Path) -> Path:
    """The populated sample store, its app id set to ``dev~sample``."""
    from courseport.datastore import SqliteBackend

    with SqliteBackend(db_path(sample_home), create=False) as store:
        store.set_meta("app_id", "dev~sample")
    return sample_home


@pytest.mark.parametrize("given", ["sample", "dev~sample", "s~sample"])
def test_application_id_matching_the_target_is_accepted(sample_app_home: Path, given: str) -> None:
    archive = sample_app_home.parent / f"{given}.zip"
    result = etl("download", "datastore", "/sample", given, "local", "--archive_path", archive,
                 "--datastore_types", "Student")
    assert result.rows == {"Student": 20}
    assert archive.is_file()


@pytest.mark.parametrize("mode", ["download", "upload", "delete"])
def test_application_id_mismatch_is_refused(sample_app_home: Path, tmp_path: Path, mode: str) -> None:
    archive = tmp_path / "x.zip"
    if mode == "upload":
        etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    before = snapshot_store(db_path(sample_app_home))
    argv = [mode, "datastore", "/sample", "other", "local"]
    if mode != "delete":
        argv += ["--archive_path", archive]
    with pytest.raises(EtlError, match="application id 'other' does not match the target's 'dev~sample'"):
        etl(*argv, stdin="YES, DELETE\n")
    assert snapshot_store(db_path(sample_app_home)) == before


def test_cli_application_id_mismatch(sample_app_home: Path) -> None:
    archive = sample_app_home.parent / "x.zip"
    before = snapshot_store(db_path(sample_app_home))
    line = assert_one_line_error(cli_at(sample_app_home, "download", "course", "/sample", "othersample", "local",
                                        "--archive_path", archive))
    assert "'othersample'" in line and "'dev~sample'" in line
    assert_no_archive(archive)
    assert snapshot_store(db_path(sample_app_home)) == before


def test_cli_run_checks_application_id(sample_app_home: Path) -> None:
    line = assert_one_line_error(cli_at(sample_app_home, "run", "courseport.jobs.examples.StoreStats",
                                        "/sample", "nope", "local"))
    assert "application id 'nope'" in line


@pytest.mark.parametrize("mode", ["download", "upload", "delete"])
def test_unknown_course_prefix(sample_home: Path, tmp_path: Path, mode: str) -> None:
    from courseport.courses.site import CourseNotFoundError

    archive = tmp_path / "x.zip"
    if mode == "upload":
        etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    before = snapshot_store(db_path(sample_home))
    argv = [mode, "datastore", "/physics", "local"] + (["--archive_path", archive] if mode != "delete" else [])
    with pytest.raises(CourseNotFoundError) as err:
        etl(*argv, stdin="YES, DELETE\n")
    assert "'/physics'" in str(err.value) and "/sample" in str(err.value)
    if mode == "download":
        assert_no_archive(archive)
    assert snapshot_store(db_path(sample_home)) == before


def test_cli_unknown_course_prefix(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "download", "course", "/physics", "local",
                                        "--archive_path", archive))
    assert "no course found with course_url_prefix '/physics'" in line and "/sample" in line
    assert_no_archive(archive)
    assert snapshot_store(db_path(sample_home)) == before


def test_unknown_datastore_types(sample_home: Path) -> None:
    archive = sample_home.parent / "x.zip"
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "download", "datastore", "/sample", "local",
                                        "--archive_path", archive, "--datastore_types", "Student,Missing,Nope"))
    assert "Requested types not found: Missing, Nope" in line
    assert "Available types are: " in line
    available = line.split("Available types are: ", 1)[1]
    for kind in ("EventEntity", "Student", "StudentAnswersEntity", "StudentPropertyEntity", "QuestionEntity"):
        assert kind in available
    assert_no_archive(archive)
    assert snapshot_store(db_path(sample_home)) == before


def test_excluding_every_kind_is_refused(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    with pytest.raises(EtlError, match="no kinds left to download"):
        etl("download", "datastore", "/sample", "local", "--archive_path", archive,
            "--datastore_types", "Student", "--exclude_types", "Student")
    assert_no_archive(archive)


def test_cloud_datastore_without_credentials_is_a_one_line_error(sample_home: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from courseport.datastore import DatastoreError

    monkeypatch.delenv("DATASTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    archive = tmp_path / "x.zip"
    with pytest.raises(DatastoreError, match="no Google Cloud credentials") as info:
        etl("download", "course", "/sample", "datastore://project", "--archive_path", archive)
    assert "\n" not in str(info.value) and "gcloud auth application-default login" in str(info.value)
    assert_no_archive(archive)


def test_cli_remote_server_without_credentials(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    env = {"COURSEPORT_EMAIL": "", "COURSEPORT_APP_PASSWORD": ""}
    line = assert_one_line_error(cli_at(sample_home, "download", "course", "/sample", "myapp.appspot.com",
                                        "--archive_path", archive, extra_env=env))
    assert "https://myapp.appspot.com" in line and "COURSEPORT_EMAIL" in line
    assert_no_archive(archive)


def test_cli_remote_server_not_running(sample_home: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    archive = tmp_path / "x.zip"
    env = {"COURSEPORT_EMAIL": "a@example.com", "COURSEPORT_APP_PASSWORD": "x" * 24}
    line = assert_one_line_error(cli_at(sample_home, "download", "course", "/sample", "localhost",
                                        "--port", port, "--archive_path", archive, extra_env=env))
    assert f"http://localhost:{port}" in line and "courseport serve" in line
    assert_no_archive(archive)


def test_sqlite_server_url(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    result = etl("download", "datastore", "/sample", f"sqlite:///{db_path(sample_home)}",
                 "--archive_path", archive, "--datastore_types", "Student")
    assert result.rows == {"Student": 20}


def test_sqlite_server_that_does_not_exist(home: Path, tmp_path: Path) -> None:
    from courseport.datastore import DatastoreError

    archive = tmp_path / "x.zip"
    missing = tmp_path / "missing.db"
    with pytest.raises(DatastoreError):
        etl("download", "course", "/sample", f"sqlite:///{missing}", "--archive_path", archive)
    assert not missing.exists()
    assert_no_archive(archive)


@pytest.mark.parametrize("readers", ["0", "65", "-1"])
def test_readers_out_of_range_is_a_one_line_error(readers: str, tmp_path: Path) -> None:
    with pytest.raises(EtlUsageError, match="--readers must be between 1 and 64") as info:
        parse_args(["download", "datastore", "/sample", "local", "--archive_path", str(tmp_path / "x.zip"),
                    "--readers", readers])
    assert "\n" not in str(info.value) and not (tmp_path / "x.zip").exists()
