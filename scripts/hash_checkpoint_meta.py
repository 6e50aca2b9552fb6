"""Add ``weights_sha256`` to the meta.json of a checkpoint folder written before it existed.

Only meta.json changes (model.safetensors keeps its bytes, so a published sha256 stays valid).
Usage: scripts/env.sh python scripts/hash_checkpoint_meta.py CHECKPOINT_DIR [...]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.errors import MonotakdError
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io.checkpoint import META_FILE, MODEL_FILE, load_checkpoint_meta


def add_hash(folder: Path) -> str:
    """Write the weights' sha256 into ``folder``'s meta.json (atomically); returns it."""
    meta = load_checkpoint_meta(folder)
    digest = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    if meta.weights_sha256 and meta.weights_sha256 != digest:
        raise MonotakdError(f"{folder / META_FILE}: records weights_sha256 {meta.weights_sha256}"
                            f" but {MODEL_FILE} hashes to {digest}; not overwriting")
    text = json.dumps(dataclass_to_dict(dataclasses.replace(meta, weights_sha256=digest)),
                      indent=2, sort_keys=True) + "\n"
    atomic.write_file(folder / META_FILE, lambda tmp: tmp.write_text(text))
    return digest


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    for folder in parser.parse_args().folders:
        try:
            print(f"{folder}: weights_sha256 {add_hash(folder)}")
        except MonotakdError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
