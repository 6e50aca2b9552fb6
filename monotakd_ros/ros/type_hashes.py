"""Installed ROS interface types: an allow-list for names found in bags, and their RIHS01 hashes.

A message type named by a bag (``pkg/msg/Type``) is data, not code: it must match a strict
pattern and be listed by an installed interface package in the ament index before anything is
imported, and the Python package found for it must live under an install prefix, never in the
current folder. ``monotakd-msg-hashes`` prints the hashes of vision_msgs and tf2_msgs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from monotakd_ros.errors import BagError

PACKAGES = ("vision_msgs", "tf2_msgs")
# ROS package names (REP 144) and message names (rosidl): nothing that could name a path.
MSG_TYPE_PATTERN = re.compile(r"(?P<package>[a-z][a-z0-9_]*)/msg/(?P<name>[A-Z][A-Za-z0-9]*)")
_INTERFACES_INDEX = Path("share") / "ament_index" / "resource_index" / "rosidl_interfaces"


def install_prefixes() -> list[Path]:
    """Where installed interfaces may live: the ament prefixes, then this interpreter's."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [*prefixes, Path(sys.prefix)]


def split_msg_type(msgtype: str) -> tuple[str, str]:
    """``pkg/msg/Type`` -> (pkg, Type); BagError for anything else."""
    match = MSG_TYPE_PATTERN.fullmatch(msgtype) if isinstance(msgtype, str) else None
    if match is None:
        raise BagError(f"message type {msgtype!r} is not of the form package/msg/Type "
                       "(lower-case package, capitalised alphanumeric type)")
    return match["package"], match["name"]


def interface_prefix(package: str, name: str) -> Path | None:
    """The first install prefix whose ament index lists ``package/msg/name``, or None."""
    wanted = {f"msg/{name}.msg", f"msg/{name}.idl"}
    for prefix in install_prefixes():
        try:
            listed = (prefix / _INTERFACES_INDEX / package).read_text().split()
        except (OSError, UnicodeDecodeError):
            continue
        if wanted.intersection(listed):
            return prefix
    return None


def _under_a_prefix(origin: str | None) -> bool:
    if not origin:
        return False
    path = Path(origin).resolve()
    return any(path.is_relative_to(prefix.resolve()) for prefix in install_prefixes())


def message_class(msgtype: str) -> Any:
    """The installed Python class of a bag's ``pkg/msg/Type``; BagError when it is refused.

    Only allow-listed names are imported: the pattern, an ament index entry for the type, and
    a Python package found under an install prefix (a folder of that name in the current
    directory or on PYTHONPATH outside the prefixes is refused, not imported).
    """
    package, name = split_msg_type(msgtype)
    if interface_prefix(package, name) is None:
        raise BagError(f"message type {msgtype}: not an installed interface (no ament index "
                       f"entry in {[str(p) for p in install_prefixes()]})")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as err:
        raise BagError(f"message type {msgtype}: package {package} not importable") from err
    if spec is None or not _under_a_prefix(spec.origin):
        where = spec.origin if spec is not None else "nowhere"
        raise BagError(f"message type {msgtype}: Python package {package} found at {where}, "
                       "outside the install prefixes; refusing to import it")
    try:
        cls = getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise BagError(f"message type {msgtype}: listed but not importable ({err})") from err
    if not isinstance(cls, type) or not hasattr(cls, "get_fields_and_field_types"):
        raise BagError(f"message type {msgtype}: {package}.msg.{name} is not a message class")
    return cls


def installed_type_hash(msgtype: str) -> str | None:
    """RIHS01 hash of an allow-listed ``pkg/msg/Type`` from its type description, if found."""
    package, name = split_msg_type(msgtype)
    prefix = interface_prefix(package, name)
    if prefix is None:
        return None
    try:
        description = json.loads((prefix / "share" / package / "msg" / f"{name}.json")
                                 .read_text())
        return str(description["type_hashes"][0]["hash_string"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def interface_share_dir(package: str) -> Path:
    """Share directory of an installed interface package (ament index first, then the prefix)."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / package
        if prefix and (candidate / "package.xml").is_file():
            return candidate
    candidate = Path(sys.prefix) / "share" / package
    if (candidate / "package.xml").is_file():
        return candidate
    raise FileNotFoundError(
        f"{package} is not installed: run scripts/setup.sh or source a ROS 2 distro"
    )


def type_hashes(package: str) -> dict[str, str]:
    """Map 'pkg/msg/Type' -> 'RIHS01_...' read from the generated type descriptions."""
    result: dict[str, str] = {}
    for path in sorted((interface_share_dir(package) / "msg").glob("*.json")):
        description = json.loads(path.read_text())
        own = description["type_hashes"][0]
        result[own["type_name"]] = own["hash_string"]
    return result


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``monotakd-msg-hashes``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    args = parser.parse_args(argv)
    for package in args.packages:
        for name, digest in type_hashes(package).items():
            sys.stdout.write(f"{name:45s} {digest}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
