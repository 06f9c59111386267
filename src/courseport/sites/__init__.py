"""What etl and the server both stand on (DESIGN.md, "sites/").

``base``: the Site interface (a course, its files, its kinds as archive rows
in key order from one snapshot, puts, deletes); ``rows``: archive rows
encoded and decoded, the privacy transform applied where the data lives;
``local``: LocalSite over a datastore Backend. Nothing here imports etl.
"""

from .base import CourseInfo, Reading, RowsPage, Site, course_info
from .local import LocalSite
from .rows import KEY_FIELDS, RowDecoder, RowEncoder, RowError, row_key

__all__ = [
    "CourseInfo", "KEY_FIELDS", "LocalSite", "Reading", "RowDecoder", "RowEncoder", "RowError",
    "RowsPage", "Site", "course_info", "row_key",
]
