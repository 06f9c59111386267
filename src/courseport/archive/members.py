"""The one mapping between archive members and kinds or course files (spec §1.4).

A kind's rows are the member ``models/<Kind>.json``; a course file at
``/path`` is the member ``files/path``. Everything else that names members
asks here.
"""

from __future__ import annotations

#: the folder of the kinds' members, and of the course files
MODELS_DIR = "models"
FILES_DIR = "files"
#: how every member name of each starts
MODELS_PREFIX = MODELS_DIR + "/"
FILES_PREFIX = FILES_DIR + "/"
_SUFFIX = ".json"


def kind_member(kind: str) -> str:
    """``Student`` -> ``models/Student.json``."""
    return f"{MODELS_PREFIX}{kind}{_SUFFIX}"


def member_kind(name: str) -> str | None:
    """``models/Student.json`` -> ``Student``; None for any other name."""
    if name.startswith(MODELS_PREFIX) and name.endswith(_SUFFIX):
        stem = name[len(MODELS_PREFIX):-len(_SUFFIX)]
        if stem and "/" not in stem:
            return stem
    return None


def is_models_member(name: str) -> bool:
    """Whether ``name`` is under ``models/`` (a kind's member or not)."""
    return name.startswith(MODELS_PREFIX)


def file_member(path: str) -> str:
    """A course file's member: ``/data/course.json`` -> ``files/data/course.json``."""
    return FILES_PREFIX + path.lstrip("/")


def member_file(name: str) -> str | None:
    """A ``files/`` member's course file path, as the archive has it
    (``files/data/course.json`` -> ``/data/course.json``); None for any
    other name. The caller normalises it."""
    if name.startswith(FILES_PREFIX):
        return name[len(FILES_DIR):]
    return None


def is_file_member(name: str) -> bool:
    return name.startswith(FILES_PREFIX)
