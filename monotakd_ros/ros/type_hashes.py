"""Print the RIHS01 type hash of every vision_msgs / tf2_msgs type this environment provides."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PACKAGES = ("vision_msgs", "tf2_msgs")


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
