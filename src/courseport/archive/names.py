"""Member names: the hostile-input rules every reader and writer applies."""

from __future__ import annotations

import re

from .errors import ArchiveError, show

MAX_NAME_CHARS = 1024
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_member_name(name: str, *, label: str = "member") -> str:
    """Return ``name`` if it is a safe relative POSIX path, else raise.

    ``label`` starts the message (``"zip member"``, ``"file"``...).
    """
    if not isinstance(name, str):
        raise ArchiveError(f"{label} name {name!r} is not a string")
    if not name:
        raise ArchiveError(f"{label} has an empty name")
    shown = f"{label} {show(name)}"
    if len(name) > MAX_NAME_CHARS:
        raise ArchiveError(f"{shown} has a name longer than {MAX_NAME_CHARS} characters")
    if "\0" in name:
        raise ArchiveError(f"{shown} contains a NUL character")
    if "\\" in name:
        raise ArchiveError(f"{shown} contains a backslash")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArchiveError(f"{shown} is not valid UTF-8") from None
    if _CONTROL.search(name):
        raise ArchiveError(f"{shown} contains a control character")
    if name.startswith("/"):
        raise ArchiveError(f"{shown} escapes the archive (absolute path)")
    if _DRIVE.match(name):
        raise ArchiveError(f"{shown} escapes the archive (drive letter)")
    parts = name.split("/")
    if ".." in parts:
        raise ArchiveError(f"{shown} escapes the archive (path contains '..')")
    if "" in parts or "." in parts:
        raise ArchiveError(f"{shown} is not a plain relative path (empty or '.' component)")
    return name


def check_no_conflicts(names: list[str], *, label: str = "member") -> None:
    """Refuse a member that is also used as a directory by another member.

    Such an archive cannot exist as a directory archive (``a`` and ``a/b``).
    """
    files = set(names)
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in files:
                raise ArchiveError(
                    f"{label} {show(name)} conflicts with member {show(prefix)} "
                    "(a file cannot also be a directory)"
                )
