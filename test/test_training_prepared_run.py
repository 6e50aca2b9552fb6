"""Training on the prepared split: resumable batches, and a student run on cached targets."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import pytest
import safetensors.torch
import torch
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.errors import DatasetError
from monotakd_ros.model_io.checkpoint import MODEL_FILE
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training import data_loading
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import (
    build_prepared_loader,
    choose_threads,
    fits_on_device,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.logging_utils import read_csv_rows
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.runner import StageRequest, run_stage

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prepared_run")
    return {"root": root, "data": write_tiny_kitti(root / "kitti", num_train=6, num_val=1),
            "model": write_yaml(root / "model.yaml", TINY_MODEL),
            "train": write_yaml(root / "train.yaml", {**TINY_TRAIN, "max_steps": 3})}


def test_a_resumed_epoch_draws_the_same_batches(env: dict[str, Path]) -> None:
    spec = input_spec_for(load_model_config(env["model"]))
    cfg = TrainConfig(batch_size=2, seed=4, workers=0, augment=AugmentConfig(0.5, 0.2, 0.2))
    loader = build_prepared_loader(env["data"], cfg, spec, CPU, env["root"] / "cache")
    whole = loader.batches(1, 0, 3)
    uninterrupted = [next(whole) for _ in range(4)]  # 3 of epoch 1, then 1 of epoch 2
    resumed = loader.batches(1, 2, 3)
    for expected in uninterrupted[2:]:
        got = next(resumed)
        assert got.frame_ids == expected.frame_ids
        assert torch.equal(got.images, expected.images)
        assert torch.equal(got.flipped, expected.flipped)
    epoch_ids = sum((b.frame_ids for b in uninterrupted[:3]), [])
    assert sorted(epoch_ids) == [f"{i:06d}" for i in range(6)]  # every frame once per epoch


def test_student_trains_on_prepared_data_and_cached_targets(env: dict[str, Path]) -> None:
    root = env["root"]
    overrides = {"data_cache": True, "frozen_cache": "fp16", "resident": "on"}
    for stage in ("teacher", "ta"):
        run_stage(StageRequest(stage=stage, model_config=env["model"],
                               train_config=env["train"], data=env["data"], out=root / stage,
                               cache_dir=root / "cache", train_overrides=overrides))
    out = root / "student"
    run_stage(StageRequest(stage="student", model_config=env["model"], train_config=env["train"],
                           data=env["data"], out=out, distill="takd",
                           teacher=RunDir(root / "teacher").last,
                           assistant=RunDir(root / "ta").last, cache_dir=root / "cache",
                           train_overrides=overrides))
    rows = read_csv_rows(RunDir(out).train_csv)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(float(r["cmrd"]) > 0 and float(r["resp_cls"]) > 0 for r in rows)
    for kind in ("teacher", "assistant"):
        assert len(list((root / "cache").glob(f"split_train_*_{kind}_*/manifest.json"))) == 1
    weights = safetensors.torch.load_file(str(RunDir(out).last / MODEL_FILE))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_resident_mode_follows_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_loading, "free_device_bytes", lambda device: 2**30)
    cpu = torch.device("cpu")
    assert fits_on_device(2**29, cpu, "auto", "the split")
    assert not fits_on_device(2**30, cpu, "auto", "the split")  # no 20 % to spare
    assert not fits_on_device(2**20, cpu, "off", "the split")
    with pytest.raises(DatasetError, match=r"the split needs 1\.0 GiB \(\+20 % margin\) on "
                                           r"cpu and 1\.0 GiB are free"):
        fits_on_device(2**30, cpu, "on", "the split")


def test_threads_are_chosen_for_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.cpu_count", lambda: 2)
        assert choose_threads(0, torch.device("cpu")) == 1 == torch.get_num_threads()
        assert choose_threads(3, torch.device("cpu")) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("data_cache", [True, False])
def test_repeat_factors_repeat_the_rare_class_frame_in_every_epoch(
        tmp_path: Path, data_cache: bool) -> None:
    data = write_tiny_kitti(tmp_path / "kitti", num_train=4, num_val=1, cars_per_frame=1)
    label = data / "training" / "label_2" / "000001.txt"
    label.write_text(label.read_text() + "Cyclist 0.00 0 0.00 100.0 100.0 150.0 200.0 1.70 "
                     "0.60 1.80 2.0 1.6 15.0 0.00\n")
    model_cfg = load_model_config(write_yaml(tmp_path / "model.yaml", TINY_MODEL))
    # Cyclist share 1/4 with t = 1 → factor 2: frame 000001 twice, the others once.
    cfg = TrainConfig(batch_size=1, seed=0, workers=0, data_cache=data_cache,
                      repeat_factor_threshold=1.0)
    stage = SimpleNamespace(name="ta", spec=input_spec_for(model_cfg), model_cfg=model_cfg,
                            frozen=None)
    loader = data_loading.build_stage_data(stage, data, [], cfg, CPU,  # type: ignore[arg-type]
                                           tmp_path / "cache")
    assert loader.batches_per_epoch == 5
    epoch = [b.frame_ids[0] for b in islice(loader.batches(0, 0, 5), 5)]
    assert sorted(epoch) == ["000000", "000001", "000001", "000002", "000003"]
