"""``courseport run dotted.path.Job`` (spec §6.8, §7.1-§7.3): the Job API and the example jobs."""

from __future__ import annotations

import csv
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SRC,
    archive_members,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    kind_rows,
    snapshot_store,
)
from courseport.datastore import Entity, Key, SqliteBackend
from courseport.etl.args import parse_args
from courseport.etl.errors import EtlError
from courseport.jobs.base import JobError
from courseport.jobs.csv import flatten
from courseport.etl.commands import call

EXAMPLES = "courseport.jobs.examples"


def _run(*argv: str) -> Any:
    """A job run in this process, as the command line runs it (the store under $COURSEPORT_HOME)."""
    return call(parse_args(["run", *argv]))


# --- loading the job -----------------------------------------------------------------------------


@pytest.mark.parametrize("dotted,phrase", [
    ("courseport.jobs.nonexistent.Job", "cannot import job module 'courseport.jobs.nonexistent'"),
    ("courseport.jobs.base.NoSuchJob", "module 'courseport.jobs.base' has no class 'NoSuchJob'"),
    ("courseport.archive.ArchiveWriter", "courseport.archive.ArchiveWriter is not a courseport.jobs.Job subclass"),
    ("courseport.jobs.base.JobError", "is not a courseport.jobs.Job subclass"),
    ("courseport.jobs.examples.sys", "is not a courseport.jobs.Job subclass"),
])
def test_bad_job_paths(sample_home: Path, dotted: str, phrase: str) -> None:
    before = snapshot_store(db_path(sample_home))
    with pytest.raises(EtlError, match=phrase.replace(".", r"\.")):
        _run(dotted, "/sample", "local")
    assert snapshot_store(db_path(sample_home)) == before


@pytest.mark.parametrize("dotted,phrase", [
    ("courseport.jobs.nonexistent.Job", "cannot import job module"),
    ("courseport.jobs.base.NoSuchJob", "has no class 'NoSuchJob'"),
    ("courseport.archive.ArchiveWriter", "is not a courseport.jobs.Job subclass"),
])
def test_cli_bad_job_paths(sample_home: Path, dotted: str, phrase: str) -> None:
    line = assert_one_line_error(cli_at(sample_home, "run", dotted, "/sample", "local", "--disable_remote"))
    assert phrase in line


def test_base_job_runs_with_disable_remote(home: Path) -> None:
    # no store at all: the base job needs no site
    proc = cli_at(home, "run", "courseport.jobs.base.Job", "/sample", "local", "--disable_remote")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert not db_path(home).exists()


def test_base_job_rejects_unexpected_job_args(home: Path) -> None:
    line = assert_one_line_error(cli_at(home, "run", "courseport.jobs.base.Job", "/sample", "local",
                                        "--disable_remote", "--job_args", "unexpected"))
    assert "unrecognized arguments: unexpected" in line


def test_course_job_refuses_disable_remote(sample_home: Path) -> None:
    with pytest.raises(EtlError, match="drop --disable_remote"):
        _run(f"{EXAMPLES}.StoreStats", "/sample", "local", "--disable_remote")


def test_course_job_on_unknown_course(sample_home: Path) -> None:
    line = assert_one_line_error(cli_at(sample_home, "run", f"{EXAMPLES}.StoreStats", "/nope", "local"))
    assert "'/nope'" in line


# --- the example jobs ------------------------------------------------------------------------------


def test_store_stats_prints_counts(sample_home: Path) -> None:
    proc = cli_at(sample_home, "run", f"{EXAMPLES}.StoreStats", "/sample", "local")
    assert proc.returncode == 0, proc.stderr
    with SqliteBackend(db_path(sample_home), create=False) as store:
        counts = {kind: store.count(kind, "ns_sample") for kind in store.kinds("ns_sample")}
    lines = proc.stdout.splitlines()
    assert lines[0] == "Store statistics for /sample (namespace 'ns_sample'):"
    shown = {}
    for line in lines[1:]:
        label, _, number = line.strip().rpartition(" ")
        shown[label.strip()] = int(number.replace(",", ""))
    for kind, count in counts.items():
        assert shown[kind] == count, kind
    assert shown["entities"] == sum(counts.values())
    assert shown["store bytes on disk"] > 0


def test_upload_file_to_course(sample_home: Path, tmp_path: Path) -> None:
    local = tmp_path / "handout.pdf"
    local.write_bytes(b"%PDF-1.4\n\x00\xff binary handout\n")
    proc = cli_at(sample_home, "run", f"{EXAMPLES}.UploadFileToCourse", "/sample", "local",
                  "--job_args", f"{local} assets/docs/handout.pdf")
    assert proc.returncode == 0, proc.stderr
    assert "/assets/docs/handout.pdf" in proc.stdout
    archive = tmp_path / "c.zip"
    etl("download", "course", "/sample", "local", "--archive_path", archive)
    members = archive_members(archive)
    assert members["files/assets/docs/handout.pdf"] == local.read_bytes()
    entries = {e["path"]: e for e in json.loads(members["manifest.json"])["entities"]}
    assert entries["files/assets/docs/handout.pdf"]["is_draft"] is False


def test_upload_file_to_course_missing_file(sample_home: Path, tmp_path: Path) -> None:
    before = snapshot_store(db_path(sample_home))
    with pytest.raises(JobError, match="no such file"):
        _run(f"{EXAMPLES}.UploadFileToCourse", "/sample", "local", "--job_args", f"{tmp_path}/nope assets/x")
    with pytest.raises(JobError, match="the following arguments are required: target"):
        _run(f"{EXAMPLES}.UploadFileToCourse", "/sample", "local", "--job_args", __file__)
    assert snapshot_store(db_path(sample_home)) == before


def test_write_student_emails(sample_home: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "emails.txt"
    proc = cli_at(sample_home, "run", f"{EXAMPLES}.WriteStudentEmailsToFile", "/sample", "local",
                  "--job_args", f"{out} --batch_size 3")
    assert proc.returncode == 0, proc.stderr
    with SqliteBackend(db_path(sample_home), create=False) as store:
        emails = [s["email"] for s in store.query("Student", "ns_sample")]
    assert len(emails) == 20
    assert out.read_text() == "".join(f"{e}\n" for e in emails)
    assert "wrote 20 emails" in proc.stdout
    # an existing output file is refused and left alone
    line = assert_one_line_error(cli_at(sample_home, "run", f"{EXAMPLES}.WriteStudentEmailsToFile", "/sample",
                                        "local", "--job_args", str(out)))
    assert str(out) in line and "already exists" in line
    assert out.read_text() == "".join(f"{e}\n" for e in emails)
    assert sorted(p.name for p in out.parent.iterdir()) == ["emails.txt"]


def test_write_student_emails_legacy_students(home: Path, tmp_path: Path) -> None:
    """Course Builder's own case: students keyed by email, no email stored."""
    with SqliteBackend(db_path(home)) as store:
        from courseport.courses.site import Site

        Site(store).add_course("/legacy")
        store.put_multi([Entity(Key("Student", f"email{i}@example.com", namespace="ns_legacy"),
                                {"user_id": str(i), "email": None}) for i in (1, 2)])
    out = tmp_path / "emails.txt"
    _run(f"{EXAMPLES}.WriteStudentEmailsToFile", "/legacy", "local", "--job_args", f"{out} --batch_size 1")
    assert out.read_text() == "email1@example.com\nemail2@example.com\n"


def test_json_to_csv_on_an_archive_member(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    out = tmp_path / "students.csv"
    proc = cli_at(sample_home, "run", "courseport.jobs.csv.JsonToCsv", "/sample", "local", "--disable_remote",
                  "--job_args", f"{archive} models/Student.json {out}")
    assert proc.returncode == 0, proc.stderr
    students = kind_rows(archive_members(archive))["Student"]
    with open(out, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        table = list(reader)
    assert len(table) == len(students) == 20
    scored = [s for s in students if s["scores"]]
    assert scored, "the sample cohort has scores"
    for column in ("key.name", "user_id", "email", "enrolled_on", "is_enrolled"):
        assert column in header
    score_columns = {f"scores_{a}" for s in scored for a in json.loads(s["scores"])}
    assert "scores_13" in score_columns and score_columns <= set(header)
    assert header == sorted(header, key=lambda c: [int(p) if p.isdigit() else p
                                                   for p in __import__("re").split(r"(\d+)", c)])
    for student, row in zip(students, table):
        assert row["key.name"] == student["key.name"] and row["email"] == student["email"]
        for assessment, score in json.loads(student["scores"] or "{}").items():
            assert row[f"scores_{assessment}"] == str(score)
    assert "wrote 20 rows" in proc.stdout
    # an existing output is refused
    line = assert_one_line_error(cli_at(sample_home, "run", "courseport.jobs.csv.JsonToCsv", "/sample", "local",
                                        "--disable_remote", "--job_args", f"{archive} models/Student.json {out}"))
    assert "already exists" in line


def test_json_to_csv_on_a_plain_file_and_errors(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "EventEntity.json"
    source.write_bytes(b'{"rows": [\n    {"key.id": 1, "data": "{\\"loc\\": {\\"city\\": \\"x\\"}, \\"n\\": [1]}"}\n]}\n')
    out = tmp_path / "events.csv"
    _run("courseport.jobs.csv.JsonToCsv", "/sample", "local", "--disable_remote", "--job_args", f"{source} {out}")
    rows = list(csv.DictReader(open(out, newline="")))
    assert rows == [{"data_loc_city": "x", "data_n": "[1]", "key.id": "1"}]
    with pytest.raises(JobError, match="no such file"):
        _run("courseport.jobs.csv.JsonToCsv", "/sample", "local", "--disable_remote",
             "--job_args", f"{tmp_path}/none.json {tmp_path}/o.csv")
    with pytest.raises(JobError, match="has no member models/Nope.json"):
        archive = tmp_path / "a.zip"
        import zipfile
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("manifest.json", b'{"entities": []}')
        _run("courseport.jobs.csv.JsonToCsv", "/sample", "local", "--disable_remote",
             "--job_args", f"{archive} models/Nope.json {tmp_path}/o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_flatten() -> None:
    assert flatten({"a": 1, "b": "x"}) == {"a": "1", "b": "x"}
    assert flatten({"scores": '{"13": 90, "14": {"x": true}}'}) == {"scores_13": "90", "scores_14_x": "true"}
    assert flatten({"data": "{not json", "n": None}) == {"data": "{not json", "n": ""}


def test_flatten_tolerates_trailing_commas() -> None:
    """Course Builder's CsvGenerator parsed JSON-in-string leniently (spec §6.12)."""
    assert flatten({"data": '{"a": 1, "b": {"c": [1, 2,],},}'}) == {"data_a": "1", "data_b_c": "[1, 2]"}
    # commas inside strings are data, not trailing commas
    assert flatten({"data": '{"a": "x,}", "b": "y ,]",}'}) == {"data_a": "x,}", "data_b": "y ,]"}
    assert flatten({"data": "{still, not json,}"}) == {"data": "{still, not json,}"}


# --- a job of one's own ------------------------------------------------------------------------------


MY_JOB = '''
    import argparse, json, sys
    from courseport.jobs import CourseJob, Job, JobError

    class CountStudents(CourseJob):
        """Counts a course's students; its own options come from --job_args."""

        def configure_parser(self, parser):
            parser.add_argument("--kind", default="Student")
            parser.add_argument("--shout", action="store_true")
            parser.add_argument("out")

        def main(self):
            report = {
                "slug": self.course.slug, "namespace": self.course.namespace, "title": self.course.title,
                "count": self.store.count(self.args.kind, self.course.namespace),
                "kind": self.args.kind, "shout": self.args.shout,
                "batch_size": self.etl_args.batch_size, "port": self.etl_args.port,
                "log_level": self.etl_args.log_level,
            }
            with open(self.args.out, "w") as f:
                json.dump(report, f)
            print("COUNTED" if self.args.shout else "counted")
            return report

    class Local(Job):
        def main(self):
            print("local job ran")

    class Failing(CourseJob):
        def main(self):
            raise JobError("the job found a problem")
'''


@pytest.fixture
def job_module(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs_pkg"
    folder.mkdir()
    (folder / "myjobs.py").write_text(textwrap.dedent(MY_JOB))
    return folder


def _env(job_module: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(SRC), str(job_module)])}


def test_user_defined_course_job(sample_home: Path, job_module: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = cli_at(sample_home, "run", "myjobs.CountStudents", "/sample", "local", "--batch_size", "5",
                  "--port", "9091", "--log_level", "warning",
                  "--job_args", f"--kind EventEntity --shout {out}", extra_env=_env(job_module))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "COUNTED\n"
    assert json.loads(out.read_text()) == {
        "slug": "/sample", "namespace": "ns_sample", "title": "An Introduction to Data Privacy",
        "count": 185, "kind": "EventEntity", "shout": True, "batch_size": 5,
        "port": 9091, "log_level": "WARNING"}  # the job sees every flag of its command line


def test_user_defined_job_options_are_its_own(sample_home: Path, job_module: Path, tmp_path: Path) -> None:
    line = assert_one_line_error(cli_at(sample_home, "run", "myjobs.CountStudents", "/sample", "local",
                                        "--job_args", "--frob x", extra_env=_env(job_module)))
    assert "myjobs.CountStudents" in line and "--frob" in line
    line = assert_one_line_error(cli_at(sample_home, "run", "myjobs.Failing", "/sample", "local",
                                        extra_env=_env(job_module)))
    assert line == "courseport: error: the job found a problem"


def test_user_defined_local_job_needs_no_store(home: Path, job_module: Path) -> None:
    proc = cli_at(home, "run", "myjobs.Local", "/anything", "local", "--disable_remote", extra_env=_env(job_module))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "local job ran\n"
    assert not db_path(home).exists()


@pytest.mark.parametrize("source,phrase", [
    ("def broken(:\n", "invalid syntax"),
    ("raise RuntimeError('no config here')\n", "RuntimeError: no config here"),
    ("import a_module_that_is_not_installed\n", "No module named 'a_module_that_is_not_installed'"),
], ids=["syntax-error", "raises-on-import", "missing-dependency"])
def test_job_module_that_fails_to_import(home: Path, tmp_path: Path, monkeypatch, source: str,
                                         phrase: str) -> None:
    name = f"failing_job_{abs(hash(source)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EtlError) as err:
        _run(f"{name}.Job", "/sample", "local", "--disable_remote")
    message = str(err.value)
    assert message.startswith(f"cannot import job module '{name}'") and phrase in message
    assert "\n" not in message


def test_cli_job_module_with_a_syntax_error(home: Path, job_module: Path) -> None:
    (job_module / "typo.py").write_text("class Oops(:\n    pass\n")
    line = assert_one_line_error(cli_at(home, "run", "typo.Oops", "/sample", "local", "--disable_remote",
                                        extra_env=_env(job_module)))
    assert "cannot import job module 'typo'" in line and "typo.py, line 1" in line


def test_write_student_emails_failing_midway_leaves_no_file(sample_home: Path, tmp_path: Path, monkeypatch) -> None:
    original = SqliteBackend.query

    def failing_query(self, kind, namespace="", **kw):
        for number, item in enumerate(original(self, kind, namespace, **kw)):
            if number == 5:
                raise OSError("disk went away")
            yield item

    monkeypatch.setattr(SqliteBackend, "query", failing_query)
    out = tmp_path / "emails.txt"
    with pytest.raises(OSError, match="disk went away"):
        _run(f"{EXAMPLES}.WriteStudentEmailsToFile", "/sample", "local", "--job_args", str(out))
    assert not out.exists() and not (tmp_path / "emails.txt.partial").exists()
