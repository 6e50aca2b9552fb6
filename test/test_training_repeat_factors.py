"""Repeat-factor sampling: LVIS factors, whole repeats per run, the sampler's epochs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import write_tiny_kitti

from monotakd_ros.configuration import dataclass_from_dict
from monotakd_ros.errors import ConfigError
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.distributed import DistContext, ResumableDistributedSampler
from monotakd_ros.training.repeat_factors import (
    frame_repeat_factors,
    integer_repeats,
    split_repeats,
)

CLASSES = ("Car", "Pedestrian", "Cyclist")


def _ctx(rank: int = 0, world_size: int = 1) -> DistContext:
    return DistContext(rank=rank, local_rank=rank, world_size=world_size,
                       device=torch.device("cpu"))


def test_factor_of_a_frame_is_that_of_its_rarest_class() -> None:
    # 8 frames: cars in all, pedestrians in 2 (share 0.25), a cyclist in 1 (share 0.125).
    frames = [frozenset({"Car"})] * 5 + [frozenset({"Car", "Pedestrian"})] * 2 + [
        frozenset({"Car", "Cyclist", "Van"})]
    factors = frame_repeat_factors(frames, CLASSES, threshold=0.5)
    # Car: sqrt(0.5 / 1) < 1 → 1; Pedestrian: sqrt(0.5 / 0.25) = √2; Cyclist: sqrt(4) = 2.
    np.testing.assert_allclose(factors, [1.0] * 5 + [np.sqrt(2.0)] * 2 + [2.0])
    np.testing.assert_array_equal(frame_repeat_factors(frames, CLASSES, 0.0), np.ones(8))
    assert frame_repeat_factors([frozenset()], CLASSES, 0.5).tolist() == [1.0]


def test_whole_repeats_round_the_fraction_up_with_its_probability() -> None:
    factors = np.array([1.0, 2.0, 3.0] + [1.25] * 4000)
    repeats = integer_repeats(factors, seed=3)
    assert repeats[:3].tolist() == [1, 2, 3]
    assert set(repeats[3:].tolist()) == {1, 2}
    assert abs(repeats[3:].mean() - 1.25) < 0.03  # binomial std of the mean: 0.007
    np.testing.assert_array_equal(repeats, integer_repeats(factors, seed=3))
    assert not np.array_equal(repeats, integer_repeats(factors, seed=4))


def test_sampler_lists_each_frame_its_repeats_and_resumes_mid_epoch() -> None:
    repeats = [1, 3, 0, 2, 1, 1]
    sampler = ResumableDistributedSampler(range(6), _ctx(), seed=5, repeats=repeats)
    assert sampler.num_samples == 8
    sampler.set_position(epoch=2, start_index=0)
    epoch = list(sampler)
    assert Counter(epoch) == {0: 1, 1: 3, 3: 2, 4: 1, 5: 1}
    sampler.set_position(epoch=2, start_index=3)
    assert list(sampler) == epoch[3:] and len(sampler) == 5
    sampler.set_position(epoch=3, start_index=0)
    assert list(sampler) != epoch  # a new order every epoch
    # Two ranks share the 8 places of an epoch.
    halves = []
    for rank in (0, 1):
        shard = ResumableDistributedSampler(range(6), _ctx(rank, 2), seed=5, repeats=repeats)
        shard.set_position(epoch=2, start_index=0)
        halves += list(shard)
    assert Counter(halves) == Counter(epoch)
    with pytest.raises(ConfigError, match="repeats: need 6 counts"):
        ResumableDistributedSampler(range(6), _ctx(), seed=5, repeats=[1, 2])


def test_split_repeats_read_the_labels_and_add_unlabelled_frames(tmp_path: Path) -> None:
    root = write_tiny_kitti(tmp_path / "kitti", num_train=4, num_val=0, cars_per_frame=1)
    cyclist = ("Cyclist 0.00 0 0.00 100.0 100.0 150.0 200.0 1.70 0.60 1.80 2.0 1.6 15.0 "
               "0.00\n")
    label = root / "training" / "label_2" / "000002.txt"
    label.write_text(label.read_text() + cyclist)
    ids = ["000000", "000001", "000002", "000003"]
    # Cyclist share 1/4, t = 1: factor 2 for frame 2; the two unlabelled frames repeat once.
    repeats = split_repeats(root, ids, CLASSES, threshold=1.0, seed=0, unlabelled_frames=2)
    assert repeats.tolist() == [1, 1, 2, 1, 1, 1]


def test_threshold_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match="repeat_factor_threshold"):
        dataclass_from_dict(TrainConfig, {"repeat_factor_threshold": 1.5}, where="train")
