#!/usr/bin/env bash
# Environment for running monotakd_ros from the pip-only venv on this machine.
# Source it (`source scripts/env.sh`) or prefix a command (`scripts/env.sh monotakd-eval ...`).
_MONOTAKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="${MONOTAKD_VENV:-$_MONOTAKD_ROOT/.venv}"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# DDS discovery must stay on loopback here (ROS_LOCALHOST_ONLY has no effect in Kilted).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# ament_index lookups (share dirs of the generated interfaces) search the venv prefix too.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Fast DDS drops full-size images in its default 512 kB shared-memory segment; this profile
# enlarges it (config/fastdds_camera.xml, docs/benchmarks.md). A profile already chosen through
# either variable is kept; MONOTAKD_FASTDDS_PROFILE="" skips ours, or names another file.
if [[ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" && -z "${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ]]; then
  _MONOTAKD_PROFILE="${MONOTAKD_FASTDDS_PROFILE-$_MONOTAKD_ROOT/config/fastdds_camera.xml}"
  if [[ -n "$_MONOTAKD_PROFILE" ]]; then
    case "${ROS_DISTRO:-}" in  # Fast DDS 2 reads only the old name; Fast DDS 3 warns about it
      humble | iron | jazzy) export FASTRTPS_DEFAULT_PROFILES_FILE="$_MONOTAKD_PROFILE" ;;
      *) export FASTDDS_DEFAULT_PROFILES_FILE="$_MONOTAKD_PROFILE" ;;  # Kilted wheels, newer
    esac
  fi
fi
if [[ "${BASH_SOURCE[0]}" == "$0" && $# -gt 0 ]]; then
  exec "$@"
fi
