"""Course Builder's etl: download, upload, delete, run jobs on, and verify course data.

The command line (``courseport download|upload|delete|run|verify``) is a thin
layer over these functions; see :mod:`courseport.etl.api` and docs/etl.md.
"""

from .api import (
    ArchiveType, DataType, DeleteResult, DownloadResult, UploadResult, Verification,
    delete, download, run_job, upload, verify,
)

__all__ = [
    "ArchiveType", "DataType", "DeleteResult", "DownloadResult", "UploadResult", "Verification",
    "delete", "download", "run_job", "upload", "verify",
]
