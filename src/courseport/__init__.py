"""courseport: Course Builder course data, out and back in."""

__version__ = "0.1.0"
