"""The rosbags type store used for every bag: ROS 2 Kilted plus this repository's vision_msgs.

vision_msgs is not part of rosbags' stores, so its types are parsed from the ``.msg`` files
shipped with the repository (``interfaces/vision_msgs/msg``). The RIHS01 hashes rosbags derives
from them equal those of a rosidl build of the same files, so bags written here replay into a
real ROS 2 install.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from monotakd_ros.errors import BagError

VISION_MSGS_PACKAGE = "vision_msgs"
_REPO_MSG_DIR = Path(__file__).resolve().parents[2] / "interfaces" / VISION_MSGS_PACKAGE / "msg"


def vision_msgs_search_dirs() -> list[Path]:
    """Folders that may hold vision_msgs ``.msg`` files, in the order they are tried."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    dirs = [_REPO_MSG_DIR]
    for prefix in prefixes:
        # setup.py installs the repository's copy; a rosidl build installs its own.
        dirs.append(prefix / "share" / "monotakd_ros" / "interfaces" / VISION_MSGS_PACKAGE / "msg")
        dirs.append(prefix / "share" / VISION_MSGS_PACKAGE / "msg")
    return dirs


def find_vision_msgs_dir() -> Path:
    """The first search folder that holds ``Detection3DArray.msg``."""
    dirs = vision_msgs_search_dirs()
    for folder in dirs:
        if (folder / "Detection3DArray.msg").is_file():
            return folder
    tried = ", ".join(str(d) for d in dirs)
    raise BagError(f"vision_msgs .msg files not found; looked for Detection3DArray.msg in {tried}")


def vision_msgs_types(msg_dir: Path) -> dict:
    """Type definitions (rosbags) of every ``vision_msgs/msg/*.msg`` file in ``msg_dir``."""
    types: dict = {}
    for path in sorted(Path(msg_dir).glob("*.msg")):
        name = f"{VISION_MSGS_PACKAGE}/msg/{path.stem}"
        try:
            types.update(get_types_from_msg(path.read_text(), name))
        except (OSError, TypesysError) as err:
            raise BagError(f"{path}: cannot parse message definition ({err})") from err
    return types


@lru_cache(maxsize=1)
def monotakd_typestore() -> Typestore:
    """ROS 2 Kilted types plus vision_msgs (built once, then shared)."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(vision_msgs_types(find_vision_msgs_dir()))
    return store
