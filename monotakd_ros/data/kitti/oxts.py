"""KITTI raw OXTS packets: one GPS/IMU reading per text file, 30 space-separated values."""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from monotakd_ros.errors import KittiFormatError


@dataclass(frozen=True)
class OxtsPacket:
    """One OXTS RT3003 reading, in the field order of KITTI's ``oxts/dataformat.txt``.

    Angles are in radians, positions in degrees (lat, lon) and metres (alt), velocities in m/s,
    accelerations in m/s^2 and angular rates in rad/s. ``f``/``l``/``u`` are the vehicle's
    forward/left/up axes; ``x``/``y``/``z`` the IMU's own axes.
    """

    lat: float
    lon: float
    alt: float
    roll: float
    pitch: float
    yaw: float
    vn: float
    ve: float
    vf: float
    vl: float
    vu: float
    ax: float
    ay: float
    az: float
    af: float
    al: float
    au: float
    wx: float
    wy: float
    wz: float
    wf: float
    wl: float
    wu: float
    pos_accuracy: float
    vel_accuracy: float
    navstat: int
    numsats: int
    posmode: int
    velmode: int
    orimode: int


OXTS_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(OxtsPacket))
_NUM_FLOAT_FIELDS = 25  # the last five fields are integer status codes


def parse_oxts_line(line: str, where: str = "<oxts>") -> OxtsPacket:
    """Parse one OXTS line; ``where`` names the source in error messages."""
    tokens = line.split()
    if len(tokens) != len(OXTS_FIELD_NAMES):
        raise KittiFormatError(
            f"{where}: expected {len(OXTS_FIELD_NAMES)} OXTS values, got {len(tokens)}"
        )
    values: list[float | int] = []
    for index, (name, token) in enumerate(zip(OXTS_FIELD_NAMES, tokens, strict=True)):
        try:
            number = float(token)
        except ValueError as err:
            raise KittiFormatError(f"{where}: field {name!r} is not a number: {token!r}") from err
        if index < _NUM_FLOAT_FIELDS:
            values.append(number)
            continue
        # Status codes are written as integers, but tolerate "4.0" from other tools.
        if not number.is_integer():
            raise KittiFormatError(f"{where}: field {name!r} must be an integer, got {token!r}")
        values.append(int(number))
    return OxtsPacket(*values)


def format_oxts_line(packet: OxtsPacket) -> str:
    """One OXTS line; floats use ``repr`` so that reading it back is exact."""
    tokens = []
    for index, value in enumerate(astuple(packet)):
        if index < _NUM_FLOAT_FIELDS:
            number = float(value)
            if not math.isfinite(number):
                name = OXTS_FIELD_NAMES[index]
                raise KittiFormatError(f"OXTS field {name!r} is not finite: {number}")
            tokens.append(repr(number))
        else:
            tokens.append(str(int(value)))
    return " ".join(tokens)


def read_oxts_file(path: Path) -> OxtsPacket:
    """Read one ``oxts/data/NNNNNNNNNN.txt`` file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot read OXTS file ({err.strerror})") from err
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise KittiFormatError(f"{path}: expected one OXTS line, got {len(lines)}")
    return parse_oxts_line(lines[0], where=f"{path}:1")


def write_oxts_file(path: Path, packet: OxtsPacket) -> None:
    """Write one OXTS file with a single line and a trailing newline."""
    Path(path).write_text(format_oxts_line(packet) + "\n")
