"""The frozen-target cache gives the student the losses of the live frozen models."""

from __future__ import annotations

import dataclasses
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.data.prepared.batches import FrameAugmentation, PreparedFrames
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split
from monotakd_ros.errors import DatasetError
from monotakd_ros.model_io.checkpoint import save_checkpoint
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.frozen_targets import cached_frozen_targets
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.stages import FrozenModels, Stage, build_stage

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("frozen")
    model_cfg = load_model_config(write_yaml(root / "model.yaml", TINY_MODEL))
    cfg = load_train_config(write_yaml(root / "train.yaml", TINY_TRAIN))
    spec = input_spec_for(model_cfg)
    seed_everything(5)
    checkpoints = {}
    for name in ("teacher", "ta"):
        stage = build_stage(name, model_cfg, spec, cfg.detection)
        checkpoints[name] = save_checkpoint(root / name, stage.model, stage.checkpoint_meta(0, 0))
    data = write_tiny_kitti(root / "kitti", num_train=4, num_val=1)
    store = prepared_split(SplitSource(data, "train", spec), root / "cache")
    return {"root": root, "model_cfg": model_cfg, "cfg": cfg, "spec": spec,
            "ckpt": checkpoints, "frames": PreparedFrames(store, spec, CPU, resident=False)}


def student(env: dict) -> Stage:
    seed_everything(1)
    cfg = dataclasses.replace(env["cfg"], distill="takd")
    return build_stage("student", env["model_cfg"], env["spec"], cfg.detection,
                       cfg.distill_config(), env["ckpt"]["teacher"], env["ckpt"]["ta"])


def losses(stage: Stage, frozen: object, batch: object) -> dict[str, float]:
    stage.loss_module.eval()  # BatchNorm statistics must not move between the two calls
    with torch.no_grad():
        terms = stage.loss_module(batch, frozen(batch))
    return {name: float(value) for name, value in terms.items()}


def test_cached_fp32_targets_give_the_live_losses(env: dict) -> None:
    stage = student(env)
    live: FrozenModels = stage.frozen
    cached = cached_frozen_targets(live, env["frames"], env["model_cfg"], env["root"] / "cache",
                                   storage="fp32")
    flips = np.array([True, False, True])
    batch = env["frames"].batch([2, 0, 1], FrameAugmentation(flips, np.ones(3), np.ones(3)))
    expected, got = losses(stage, live, batch), losses(stage, cached, batch)
    assert {"imd", "cmrd", "resp_cls", "resp_box", "resp_dir"} <= set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    # Each flip state has its own targets: reading the other state's would be wrong.
    mirrored = dataclasses.replace(batch, flipped=~batch.flipped)
    assert not torch.allclose(cached(mirrored).teacher.features.bev,
                              cached(batch).teacher.features.bev, atol=1e-3)


def test_fp16_targets_are_close_and_half_the_size(env: dict) -> None:
    stage = student(env)
    fp32 = cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"],
                                 env["root"] / "cache", storage="fp32")
    fp16 = cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"],
                                 env["root"] / "cache", storage="fp16")
    assert fp16.nbytes * 2 == fp32.nbytes
    batch = env["frames"].batch([3, 1], FrameAugmentation.fixed_flip(2, True))
    expected, got = losses(stage, stage.frozen, batch), losses(stage, fp16, batch)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=2e-2, abs=1e-4), name


def test_other_teacher_weights_make_another_cache(env: dict) -> None:
    stage = student(env)
    first = cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"],
                                  env["root"] / "cache", storage="fp32")
    with torch.no_grad():
        next(stage.frozen.teacher.parameters()).add_(0.5)
    second = cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"],
                                   env["root"] / "cache", storage="fp32")
    assert second.stores["teacher"].key != first.stores["teacher"].key
    assert second.stores["assistant"].folder == first.stores["assistant"].folder  # TA unchanged
    entry = torch.tensor([0])
    assert not torch.equal(first._entries("teacher_bev", entry),
                           second._entries("teacher_bev", entry))


def test_live_batches_are_refused(env: dict) -> None:
    stage = student(env)
    cached = cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"],
                                   env["root"] / "cache", storage="fp32")
    from monotakd_ros.data.batch import collate_frames
    from monotakd_ros.data.datasets import KittiFrameDataset
    live_batch = collate_frames([KittiFrameDataset(Path(env["frames"].store.metadata["root"]),
                                                   "train", env["spec"])[0]])
    with pytest.raises(DatasetError, match="needs batches of the prepared split"):
        cached(live_batch)


def test_a_full_disk_names_the_size_of_the_targets(env: dict, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stage = student(env)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(DatasetError, match=r"frozen teacher/TA targets \(4 frames x 2 flip "
                                           r"states, .* per frame\) needs .* of disk, only "
                                           r"4\.0 KiB free"):
        cached_frozen_targets(stage.frozen, env["frames"], env["model_cfg"], tmp_path / "c",
                              storage="fp32")
    assert not list((tmp_path / "c").glob("*tmp*"))
