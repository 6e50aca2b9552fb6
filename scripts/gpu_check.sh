#!/usr/bin/env bash
# One command for a bare GPU machine (Python 3.12 + torch, numpy, opencv, safetensors, PyYAML,
# tqdm, matplotlib; no ROS, no pytest, nothing installed): parity checks and benchmarks, one
# JSON and a log in OUT_DIR. Usage: scripts/gpu_check.sh OUT_DIR [--toy] [--device cpu|cuda]
# Exit status: 0 all checks passed, 1 a check failed, 2 bad set-up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
[[ $# -ge 1 ]] || { echo "usage: $0 OUT_DIR [--toy] [--device cpu|cuda] [--budget-s S]" >&2; exit 2; }
missing="$("$PY" - <<'PYEOF'
import importlib.util
need = ["torch", "numpy", "cv2", "safetensors", "yaml"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PYEOF
)"
[[ -z "$missing" ]] || { echo "gpu_check: missing Python packages: $missing" >&2; exit 2; }
cd "$ROOT"
# A hard wall at 6 minutes, whatever a section does; the JSON holds every finished section.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec timeout --signal=INT 360 "$PY" scripts/gpu_check.py "$@"
