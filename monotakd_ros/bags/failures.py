"""One boundary for damaged bags: whatever the bag library raises becomes a BagError naming it.

rosbags parses untrusted files (YAML metadata, sqlite3, mcap chunks, ROS 1 records) and raises
many exception types on damaged input (ReaderError, KeyError, TypeError, UnicodeDecodeError,
struct.error, sqlite3.DatabaseError, ...). The openers and message loops of this package run
inside ``bag_failures`` so a user sees ``<path>: cannot <action> (<reason>)`` instead of a
traceback. The project's own errors pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monotakd_ros.errors import BagError, MonotakdError


@contextmanager
def bag_failures(path: Path | str, action: str) -> Iterator[None]:
    """Re-raise any failure inside the block as ``BagError("<path>: cannot <action> (...)")``."""
    try:
        yield
    except MonotakdError:
        raise
    except Exception as err:  # noqa: BLE001 - damaged input makes rosbags raise anything
        raise BagError(f"{path}: cannot {action} ({type(err).__name__}: {err})") from err
