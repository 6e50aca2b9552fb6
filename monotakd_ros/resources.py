"""Files shipped with the package: found in the ament share directory or in the source tree."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "monotakd_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "models/default_student"


def _ament_share_dir() -> Path | None:
    """share/monotakd_ros of an installed (colcon) package, or None outside a ROS install."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return None
    try:
        return Path(get_package_prefix(PACKAGE)) / "share" / PACKAGE
    except (PackageNotFoundError, OSError):
        # OSError: ament_index_python importable but AMENT_PREFIX_PATH unset (no ROS sourced).
        return None


def share_path(relative: str) -> Path:
    """Installed copy of ``relative`` when it exists there, else the source tree's copy.

    The source-tree path is returned even when it does not exist, so that an error about a
    missing file names the place a user would look first.
    """
    share = _ament_share_dir()
    if share is not None and (share / relative).exists():
        return share / relative
    return SOURCE_ROOT / relative


def default_model_path() -> Path:
    """The shipped student checkpoint (``models/default_student``)."""
    return share_path(DEFAULT_MODEL)
