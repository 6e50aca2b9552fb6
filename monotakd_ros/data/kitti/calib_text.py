"""Text layer of the KITTI calibration files: ``key: numbers`` lines in, exact floats out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.errors import CalibrationError

# A key is followed by ':' (object and raw files) or by whitespace only (tracking's "R_rect ...").
_KEY_LINE = re.compile(r"^([A-Za-z_]\w*)(?:\s*:|\s+|$)\s*(.*)$")


@dataclass(frozen=True)
class CalibEntry:
    """The text after one key, with the 1-based line it came from."""

    line_no: int
    text: str


class CalibFile:
    """All ``key: values`` entries of one calibration file, with error messages naming the file."""

    def __init__(self, path: Path, entries: dict[str, CalibEntry]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def read(cls, path: Path) -> CalibFile:
        """Parse ``path``; a line without a key or a repeated key is an error."""
        path = Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise CalibrationError(f"{path}: cannot read calibration file ({err})") from err
        entries: dict[str, CalibEntry] = {}
        for line_no, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            match = _KEY_LINE.match(stripped)
            if match is None:
                raise CalibrationError(
                    f"{path}:{line_no}: expected 'key: values', got {stripped[:60]!r}"
                )
            key, value = match.group(1), match.group(2)
            if key in entries:
                raise CalibrationError(
                    f"{path}:{line_no}: key {key!r} repeated (first on line "
                    f"{entries[key].line_no})"
                )
            entries[key] = CalibEntry(line_no, value)
        return cls(path, entries)

    def find(self, key: str, aliases: tuple[str, ...] = ()) -> tuple[str, CalibEntry] | None:
        """The entry stored under ``key`` or one of its aliases, with the name actually used."""
        for name in (key, *aliases):
            if name in self.entries:
                return name, self.entries[name]
        return None

    def text(self, key: str) -> str | None:
        """The raw text of an optional entry (e.g. ``calib_time``), or None when absent."""
        entry = self.entries.get(key)
        return None if entry is None else entry.text

    def floats(self, key: str, count: int, aliases: tuple[str, ...] = ()) -> np.ndarray:
        """The ``count`` finite numbers stored under ``key`` (or an alias) as float64."""
        found = self.find(key, aliases)
        if found is None:
            names = " / ".join(repr(name) for name in (key, *aliases))
            raise CalibrationError(f"{self.path}: missing key {names}")
        name, entry = found
        return parse_floats(entry.text, count, f"{self.path}:{entry.line_no}: key {name!r}")

    def optional_floats(self, key: str, count: int) -> np.ndarray | None:
        """Like ``floats`` but None when the key is absent."""
        return self.floats(key, count) if key in self.entries else None


def parse_floats(text: str, count: int, where: str) -> np.ndarray:
    """``count`` finite whitespace-separated numbers; ``where`` prefixes every error message."""
    tokens = text.split()
    if len(tokens) != count:
        raise CalibrationError(f"{where}: expected {count} numbers, got {len(tokens)}")
    try:
        values = np.array([float(token) for token in tokens], dtype=np.float64)
    except ValueError as err:
        raise CalibrationError(f"{where}: non-numeric value in {text.strip()[:80]!r}") from err
    if not np.all(np.isfinite(values)):
        raise CalibrationError(f"{where}: non-finite value in {text.strip()[:80]!r}")
    return values


def format_floats(values: np.ndarray, min_digits: int) -> str:
    """Numbers in ``%e`` style with at least ``min_digits`` decimals, more if needed to be exact.

    KITTI writes ``%.12e`` (object set) or ``%e`` (raw set); the shortest-unique extension keeps
    every float64 bit so that reading the text back gives the very same value.
    """
    return " ".join(
        np.format_float_scientific(float(v), unique=True, min_digits=min_digits, exp_digits=2)
        for v in np.asarray(values, dtype=np.float64).reshape(-1)
    )


def checked_array(owner: str, name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float64 copy of ``value`` with the given shape and finite entries."""
    array = np.array(value, dtype=np.float64, copy=True)
    if array.shape != shape:
        raise CalibrationError(f"{owner}.{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{owner}.{name} holds non-finite values: {array.tolist()}")
    array.flags.writeable = False
    return array


def checked_time(owner: str, value: str | None) -> str | None:
    """A calibration timestamp that fits on one line (None when the file had none)."""
    if value is not None and ("\n" in value or "\r" in value):
        raise CalibrationError(f"{owner}.calib_time must be one line, got {value!r}")
    return value


def write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines`` newline-terminated, creating the parent folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))
    except OSError as err:
        raise CalibrationError(f"{path}: cannot write calibration file ({err})") from err
