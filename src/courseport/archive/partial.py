"""What each container type's partial does for ArchiveWriter."""

from __future__ import annotations

from typing import BinaryIO


class Partial:
    """``<path>.partial`` of one container type."""

    members: list[str]  # completed members, in the order written

    def begin(self, name: str) -> BinaryIO:
        """Start a member; return the stream its bytes go to."""
        raise NotImplementedError

    def finish(self, name: str, stream: BinaryIO) -> None:
        """The member is complete: make it count."""
        raise NotImplementedError

    def fail(self, name: str, stream: BinaryIO) -> None:
        """The member failed: leave no trace of it."""
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Make every completed member survive a crash."""

    def finalize(self, manifest: bytes) -> None:
        """Write ``manifest.json`` and close, ready to be renamed into place."""
        raise NotImplementedError

    def abort(self, keep: bool) -> None:
        """Close; with ``keep``, make completed members resumable first."""

    def cleanup(self) -> None:
        """After the rename: remove helper files."""
