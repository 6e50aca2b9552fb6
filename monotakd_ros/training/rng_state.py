"""Capture and restore every random generator, as JSON-safe data, for exact resumption."""

from __future__ import annotations

import base64
import random
from typing import Any

import numpy as np
import torch

from monotakd_ros.errors import CheckpointError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _bytes_to_text(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def _text_to_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def capture_rng_state() -> dict[str, Any]:
    """JSON-safe snapshot of the python, numpy, torch and CUDA generators."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": {"kind": np_kind, "keys": np.asarray(np_keys).tolist(), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": _bytes_to_text(torch.get_rng_state()),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_bytes_to_text(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put every generator back to a snapshot from ``capture_rng_state``."""
    try:
        py_version, py_internal, py_gauss = state["python"]
        random.setstate((py_version, tuple(py_internal), py_gauss))
        np_state = state["numpy"]
        np.random.set_state((np_state["kind"], np.asarray(np_state["keys"], dtype=np.uint32),
                             np_state["pos"], np_state["has_gauss"],
                             np_state["cached_gaussian"]))
        torch.set_rng_state(_text_to_bytes(state["torch"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"train state: unusable RNG snapshot ({err})") from err
    cuda_states = state.get("cuda", [])
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) != torch.cuda.device_count():
            raise CheckpointError(
                f"train state: RNG snapshot has {len(cuda_states)} CUDA generators, "
                f"this machine has {torch.cuda.device_count()} devices")
        torch.cuda.set_rng_state_all([_text_to_bytes(s) for s in cuda_states])
