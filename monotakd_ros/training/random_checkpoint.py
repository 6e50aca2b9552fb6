"""A randomly initialised student checkpoint: proof of life for the predictor and the node."""

from __future__ import annotations

from pathlib import Path

import torch

from monotakd_ros.configuration import dataclass_to_dict
from monotakd_ros.model_io.checkpoint import CheckpointMeta, save_checkpoint
from monotakd_ros.models.build import build_student
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.training.data_loading import input_spec_for


def make_random_student_checkpoint(path: Path, model_config: ModelConfig,
                                   seed: int = 0) -> Path:
    """Write an untrained student of ``model_config`` (weights drawn with ``seed``) to ``path``.

    Its boxes are meaningless, but it exercises the whole pipeline with real shapes. The head
    starts at p(object) = 0.01, so use a score threshold below that to see boxes.
    """
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_student(model_config)
    finally:
        torch.random.set_rng_state(generator_state)  # leave the caller's RNG stream alone
    meta = CheckpointMeta(stage="student", model_config=dataclass_to_dict(model_config),
                          input_spec=input_spec_for(model_config),
                          anchors=[dataclass_to_dict(a) for a in model_config.head.anchors])
    return save_checkpoint(Path(path), model, meta)
