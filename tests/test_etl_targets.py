"""Every kind of download target and upload source.

The outcome is a correct result or a one-line refusal, and nothing else on
the machine changes: a FIFO, a device node or a socket is never replaced or
written through, a directory that is not an archive is never removed, a
link is replaced itself (its target untouched), and a full or read-only
disk is one line that leaves the partial archive resumable.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import archive_members, assert_one_line_error, cli_at, db_path, make_store_template, snapshot_store
from courseport.etl import verify

DOWNLOAD = ["download", "datastore", "/sample", "local", "--datastore_types", "Student,StudentAnswersEntity"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("targets") / "home", students=40, seed=2)


@pytest.fixture
def home(home: Path, template: Path) -> Path:
    """conftest's empty home, holding a copy of the module's store."""
    shutil.copyfile(db_path(template), db_path(home))
    return home


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a node of /dev/null's kind, in a tmp folder
    except PermissionError:
        pytest.skip("making a device node needs root")


def _socket(path: Path) -> Iterator[None]:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server  # type: ignore[return-value]


SPECIALS: dict[str, Callable[[Path], object]] = {"fifo": _fifo, "device": _device, "socket": _socket}


def _describe(path: Path) -> tuple:
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_ino, info.st_rdev


def _tree(folder: Path) -> dict[str, tuple]:
    return {str(p.relative_to(folder)): _describe(p) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("special", sorted(SPECIALS))
@pytest.mark.parametrize("flags", [[], ["--force_overwrite"], ["--resume"]], ids=["plain", "force", "resume"])
def test_a_special_file_is_never_replaced(home: Path, tmp_path: Path, special: str, flags: list) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "a.zip"
    keep = SPECIALS[special](target)
    before = _tree(out)
    line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", target, *flags, timeout=30))
    assert str(target) in line
    assert _tree(out) == before  # the node is the same node, and nothing was left beside it
    del keep


@pytest.mark.parametrize("special", sorted(SPECIALS))
@pytest.mark.parametrize("helper", [".partial", ".partial.manifest", ".partial.resume", ".lock"])
def test_a_special_file_in_a_helper_files_place_is_refused(home: Path, tmp_path: Path, special: str,
                                                          helper: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "a.zip"
    keep = SPECIALS[special](Path(f"{target}{helper}"))
    before = _tree(out)
    flags = ["--resume"] if helper != ".lock" else []
    proc = cli_at(home, *DOWNLOAD, "--archive_path", target, *flags, timeout=30)  # a FIFO must not block it
    assert_one_line_error(proc)
    assert _tree(out) == before
    assert _describe(Path(f"{target}{helper}"))[0] == before[f"a.zip{helper}"][0]
    del keep


def test_a_directory_that_is_not_an_archive_is_never_removed(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.txt").write_text("years of work")
    for archive_type in ("zip", "directory"):
        line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", target, "--force_overwrite",
                                            "--archive_type", archive_type))
        assert "more than an archive" in line or "is a directory, not a zip" in line
        assert (target / "thesis.txt").read_text() == "years of work"
    line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", target, "--force_overwrite"))
    assert "more than an archive" in line  # the zip default: refused at the rename's door
    assert sorted(p.name for p in target.iterdir()) == ["thesis.txt"]


def test_a_link_is_replaced_and_its_target_left_alone(home: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "a.zip"
    link.symlink_to(precious)
    proc = cli_at(home, *DOWNLOAD, "--archive_path", link, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    assert not link.is_symlink() and verify(link).ok
    assert precious.read_text() == "keep me"
    dangling = tmp_path / "b.zip"
    dangling.symlink_to(tmp_path / "nowhere" / "x.zip")
    proc = cli_at(home, *DOWNLOAD, "--archive_path", dangling, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_missing_folder_and_an_existing_file(home: Path, tmp_path: Path) -> None:
    line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", tmp_path / "no" / "a.zip"))
    assert "does not exist" in line
    existing = tmp_path / "a.zip"
    existing.write_bytes(b"mine")
    line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", existing))
    assert "--force_overwrite" in line and existing.read_bytes() == b"mine"


# --- mounted file systems (root only: the tests mount small tmpfs folders) ------------------------


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    mounted: list[Path] = []

    def make(size: str = "1m", *options: str) -> Path:
        point = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        opts = ",".join((f"size={size}",) + options)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _remount(point: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(("remount",) + options), str(point)], check=True)


def test_a_read_only_folder_is_refused(home: Path, mount) -> None:
    point = mount("1m", "ro")
    line = assert_one_line_error(cli_at(home, *DOWNLOAD, "--archive_path", point / "a.zip"))
    assert "not writable" in line or "read-only" in line


def test_a_full_disk_stops_a_download_in_one_line_and_it_resumes(home: Path, mount) -> None:
    point = mount("8k")
    archive = point / "all.zip"
    argv = ["download", "datastore", "/sample", "local", "--archive_path", archive]
    line = assert_one_line_error(cli_at(home, *argv))
    assert "No space left on device" in line and "--resume" in line
    assert Path(f"{archive}.partial").exists() and not archive.exists()
    _remount(point, "size=64m")
    proc = cli_at(home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert verify(archive).ok, verify(archive).lines()


def test_a_full_disk_stops_an_upload_in_one_line_and_writes_nothing(home: Path, tmp_path: Path, mount) -> None:
    archive = tmp_path / "all.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", archive)
    assert proc.returncode == 0, proc.stderr
    point = mount("64m")
    target = point / "target.db"
    server = f"sqlite:///{target}"
    proc = cli_at(home, "init", "--datastore", server)
    assert proc.returncode == 0, proc.stderr
    proc = cli_at(home, "courses", "add", "/copy", "--datastore", server)
    assert proc.returncode == 0, proc.stderr
    before = snapshot_store(target)
    used = shutil.disk_usage(point).used
    _remount(point, f"size={used + 200 * 1024}")  # 200 KiB to spare: the upload needs more
    line = assert_one_line_error(cli_at(home, "upload", "datastore", "/copy", server, "--archive_path", archive))
    assert "full" in line or "No space left" in line
    _remount(point, "size=64m")
    assert snapshot_store(target) == before


# --- upload sources -------------------------------------------------------------------------------


@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_an_upload_from_a_special_file_is_refused(home: Path, tmp_path: Path, special: str) -> None:
    source = tmp_path / "in.zip"
    keep = SPECIALS[special](source)
    before = snapshot_store(db_path(home))
    line = assert_one_line_error(cli_at(home, "upload", "datastore", "/sample", "local", "--archive_path",
                                        source, timeout=30))
    assert str(source) in line
    assert snapshot_store(db_path(home)) == before
    del keep


@pytest.mark.parametrize("make", ["missing", "empty", "text", "folder", "link-to-folder", "dangling-link"])
def test_an_upload_from_a_broken_source_is_refused(home: Path, tmp_path: Path, make: str) -> None:
    source = tmp_path / "in.zip"
    if make == "empty":
        source.write_bytes(b"")
    elif make == "text":
        source.write_text("not a zip")
    elif make == "folder":
        (source / "models").mkdir(parents=True)
    elif make == "link-to-folder":
        (tmp_path / "folder").mkdir()
        source.symlink_to(tmp_path / "folder")
    elif make == "dangling-link":
        source.symlink_to(tmp_path / "nowhere.zip")
    before = snapshot_store(db_path(home))
    assert_one_line_error(cli_at(home, "upload", "datastore", "/sample", "local", "--archive_path", source))
    assert snapshot_store(db_path(home)) == before


def test_an_upload_through_a_link_to_an_archive_works(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "real.zip"
    proc = cli_at(home, *DOWNLOAD, "--archive_path", archive)
    assert proc.returncode == 0, proc.stderr
    link = tmp_path / "link.zip"
    link.symlink_to(archive)
    assert cli_at(home, "courses", "add", "/copy").returncode == 0
    proc = cli_at(home, "upload", "datastore", "/copy", "local", "--archive_path", link)
    assert proc.returncode == 0, proc.stderr
    assert archive_members(archive)  # the archive is still there, unchanged
