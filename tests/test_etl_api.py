"""``courseport.etl`` as a library: keyword calls, the command line's rules, Sites left open."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import assert_no_archive, db_path, kind_rows, archive_members, open_local, snapshot_store
from courseport import etl
from courseport.errors import UserError
from courseport.etl.args import EtlUsageError
from courseport.jobs.examples import StoreStats


@pytest.mark.parametrize("call,phrase", [
    (lambda out: etl.download("local", "sample", type="datastore", archive_path=out), "must start with '/'"),
    (lambda out: etl.download("local", "/sample", type="course", archive_path=out, privacy=True),
     "--privacy is only allowed with download datastore"),
    (lambda out: etl.download("local", "/sample", type="datastore", archive_path=out, batch_size=0),
     "--batch_size must be between"),
    (lambda out: etl.download("local", "/sample", type="datastore", archive_path=out,
                              datastore_types="Student,,X"), "empty kind name"),
    (lambda out: etl.download("local", "/sample", type="datastore", archive_path=out,
                              archive_type="tar"), "--archive_type must be"),  # type: ignore[arg-type]
    (lambda out: etl.download("local", "/sample", type="datastore", archive_path=out,
                              resume=True, force_overwrite=True), "contradict"),
    (lambda out: etl.upload("local", "/sample", type="datastore", archive_path=out), "does not exist"),
    (lambda out: etl.delete("local", "/sample", type="kinds", confirmed=True),  # type: ignore[arg-type]
     "type must be 'course' or 'datastore'"),
    (lambda out: etl.run_job("local", "/sample", job="nodots"), "dotted path"),
])
def test_library_calls_obey_the_command_lines_rules(sample_home: Path, tmp_path: Path, call, phrase: str) -> None:
    before = snapshot_store(db_path(sample_home))
    out = tmp_path / "out.zip"
    with pytest.raises(EtlUsageError, match=phrase) as info:
        call(out)
    assert isinstance(info.value, UserError)
    assert_no_archive(out)
    assert snapshot_store(db_path(sample_home)) == before


def test_download_upload_delete_round_trip_through_the_library(sample_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "students.zip"
    got = etl.download("local", "/sample", type="datastore", archive_path=out,
                       datastore_types=["Student"], progress=False)
    assert isinstance(got, etl.DownloadResult) and got.rows == {"Student": 20} and got.path == out
    assert etl.verify(out).ok
    listing = io.StringIO()
    gone = etl.delete("local", "/sample", type="datastore", datastore_types="Student",
                      confirmed=True, stdout=listing, progress=False)
    assert gone.rows == {"Student": 20} and not gone.course_removed
    assert "Student" in listing.getvalue()
    back = etl.upload("local", "/sample", type="datastore", archive_path=out, progress=False)
    assert back.rows == {"Student": 20}
    again = tmp_path / "again.zip"
    etl.download("local", "/sample", type="datastore", archive_path=again, datastore_types=["Student"],
                 progress=False)
    assert kind_rows(archive_members(again)) == kind_rows(archive_members(out))


def test_delete_unconfirmed_asks_on_stdin_and_deletes_nothing(sample_home: Path) -> None:
    before = snapshot_store(db_path(sample_home))
    with pytest.raises(UserError, match="Delete not confirmed"):
        etl.delete("local", "/sample", type="datastore", stdin=io.StringIO("yes\n"),
                   stdout=io.StringIO(), progress=False)
    assert snapshot_store(db_path(sample_home)) == before


def test_a_site_given_is_used_and_left_open(sample_home: Path, tmp_path: Path) -> None:
    site = open_local(sample_home)
    try:
        out = tmp_path / "course"
        got = etl.download(site, "/sample", type="course", archive_path=out, archive_type="directory",
                           progress=False)
        assert out.is_dir() and got.files > 0
        assert etl.verify(out, archive_type="directory").ok
        assert site.course("/sample").slug  # still open
    finally:
        site.close()


def test_run_job_takes_a_class_or_its_dotted_path(sample_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def counts() -> list[str]:
        return [line for line in capsys.readouterr().out.splitlines() if "bytes" not in line]

    etl.run_job("local", "/sample", job=StoreStats)
    first = counts()
    etl.run_job("local", "/sample", job="courseport.jobs.examples.StoreStats", job_args=[])
    assert any("Student" in line for line in first) and counts() == first
