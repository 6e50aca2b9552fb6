"""Nested plain data (dicts, lists, tuples, tensors, arrays) as JSON: exact types, no pickle."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from safetensors.torch import load as tensors_from_safetensors_bytes

from monotakd_ros.errors import CheckpointError


def encode_plain(value: Any, tensors: dict[str, torch.Tensor] | None, key: str) -> Any:
    """JSON-safe form of nested data; tensors go to ``tensors`` (or inline if it is None).

    Tuples, non-string dict keys, numpy arrays and tensors are tagged so that
    ``decode_plain`` gives back exactly the same types.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        if tensors is None:
            blob = safetensors.torch.save({"t": value.detach().cpu().contiguous()})
            return {"__tensor_b64__": base64.b64encode(blob).decode("ascii")}
        tensors[key] = value.detach()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": {"dtype": value.dtype.str, "shape": list(value.shape),
                                "data": value.ravel().tolist()}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode_plain(v, tensors, f"{key}.{i}")
                              for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_plain(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_plain(v, tensors, f"{key}.{k}") for k, v in value.items()}
        return {"__items__": [[encode_plain(k, None, key), encode_plain(v, tensors, f"{key}.{k}")]
                              for k, v in value.items()]}
    raise CheckpointError(f"{key}: cannot store a value of type {type(value).__name__}")


def decode_plain(value: Any, tensors: Mapping[str, torch.Tensor], source: Path) -> Any:
    """Inverse of ``encode_plain``; ``source`` names the file in error messages."""
    if isinstance(value, list):
        return [decode_plain(v, tensors, source) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith("__"):
        return {k: decode_plain(v, tensors, source) for k, v in value.items()}
    (tag, body), = value.items()
    try:
        if tag == "__tuple__":
            return tuple(decode_plain(v, tensors, source) for v in body)
        if tag == "__items__":
            return {decode_plain(k, tensors, source): decode_plain(v, tensors, source)
                    for k, v in body}
        if tag == "__tensor__":
            return tensors[body]
        if tag == "__tensor_b64__":
            return tensors_from_safetensors_bytes(base64.b64decode(body))["t"]
        if tag == "__ndarray__":
            return np.asarray(body["data"], dtype=np.dtype(body["dtype"])).reshape(body["shape"])
    except (KeyError, TypeError, ValueError, safetensors.SafetensorError) as err:
        raise CheckpointError(f"{source}: unreadable {tag} entry ({err!r})") from err
    raise CheckpointError(f"{source}: unknown tag {tag!r}")
