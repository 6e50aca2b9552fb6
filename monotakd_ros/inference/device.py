"""Device and precision choice for inference: ``auto|cuda|cpu`` and fp16 only where it helps."""

from __future__ import annotations

import logging

import torch

from monotakd_ros.errors import ConfigError

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cuda", "cpu")


def select_device(requested: str) -> torch.device:
    """Torch device for ``auto`` (CUDA when available), ``cuda``/``cuda:N`` or ``cpu``."""
    name = str(requested).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: '{requested}' requested but CUDA is not available "
                              "(use 'auto' or 'cpu')")
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ConfigError(f"device: cannot parse '{requested}' ({err})") from err
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: '{requested}' but only {torch.cuda.device_count()} "
                              "CUDA device(s) exist")
        return device
    raise ConfigError(f"device: expected one of {list(DEVICE_CHOICES)} or 'cuda:N', "
                      f"got '{requested}'")


def fp16_enabled(device: torch.device, fp16: bool) -> bool:
    """Whether to autocast to float16: only on CUDA; a CPU request is ignored with a warning."""
    if fp16 and device.type != "cuda":
        # CPU float16 kernels are slow or missing; float32 is the right choice there.
        logger.warning("fp16 requested on %s: ignored, running in float32", device)
        return False
    return bool(fp16)
