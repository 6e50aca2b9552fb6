"""--resume continues exactly: 3 steps + resume 3 steps == 6 uninterrupted steps, bit for bit."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import safetensors.torch
import torch
from torch import nn
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io.checkpoint import MODEL_FILE, OPTIMIZER_FILE
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import (
    build_train_dataset,
    build_train_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import WRITE_PROBE_PREFIX, RunDir, has_saved_state
from monotakd_ros.training.runner import StageRequest, run_stage
from monotakd_ros.training.stages import build_stage
from monotakd_ros.training.trainer import train

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("resume")
    return {
        "data": write_tiny_kitti(root / "kitti", num_train=6, num_val=2),
        "model": write_yaml(root / "model.yaml", TINY_MODEL),
        "train": write_yaml(root / "train.yaml", {**TINY_TRAIN, "max_steps": 6}),
        "root": root,
    }


class NoisyLoss(nn.Module):
    """Scales the loss by a draw from the global torch RNG, so resumption must restore it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, batch: FrameBatch, frozen: object) -> dict[str, torch.Tensor]:
        terms = self.inner(batch, frozen)
        terms["total"] = terms["total"] * (0.5 + torch.rand(()))
        return terms


def train_teacher(setup: dict[str, Path], out: Path, resume: bool, stop_at_step: int | None,
                  **overrides: object) -> None:
    model_cfg = load_model_config(setup["model"])
    cfg = dataclasses.replace(load_train_config(setup["train"]), **overrides)
    seed_everything(cfg.seed)
    spec = input_spec_for(model_cfg)
    stage = build_stage("teacher", model_cfg, spec, cfg.detection)
    stage.loss_module = NoisyLoss(stage.loss_module)
    dataset = build_train_dataset(setup["data"], "train", spec, augment=cfg.augment)
    data = build_train_loader(dataset, cfg, CPU)
    train(stage, data, cfg, RunDir(out), CPU, resume=resume, stop_at_step=stop_at_step)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(path))


def assert_bitwise_equal(a: Path, b: Path) -> None:
    for name in (MODEL_FILE, OPTIMIZER_FILE):
        first, second = tensors(a / name), tensors(b / name)
        assert first.keys() == second.keys()
        for key in first:
            assert torch.equal(first[key], second[key]), f"{name}:{key}"


@pytest.mark.parametrize(("grad_accum", "batch_size", "stop"), [
    (1, 2, 3),  # 3 steps per epoch: 3 + 3 crosses an epoch boundary at the resume point
    (2, 1, 4),  # 6 batches = 3 accumulated steps per epoch: resume mid-epoch at batch 2
])
def test_resume_equals_uninterrupted(setup: dict[str, Path], tmp_path: Path, grad_accum: int,
                                     batch_size: int, stop: int) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    options = {"grad_accum": grad_accum, "batch_size": batch_size}
    train_teacher(setup, straight, resume=False, stop_at_step=None, **options)
    train_teacher(setup, resumed, resume=False, stop_at_step=stop, **options)
    interrupted = tensors(resumed / "checkpoints" / "last" / MODEL_FILE)
    train_teacher(setup, resumed, resume=True, stop_at_step=None, **options)
    assert_bitwise_equal(straight / "checkpoints" / "last", resumed / "checkpoints" / "last")
    # ... and the resumed half really trained: the weights moved after step 3.
    final = tensors(resumed / "checkpoints" / "last" / MODEL_FILE)
    assert any(not torch.equal(final[k], interrupted[k]) for k in final)
    # The loss log reads as one run: steps 1..6 once each, identical values.
    rows = [list(csv.DictReader((d / "train_log.csv").open())) for d in (straight, resumed)]
    assert [r["step"] for r in rows[1]] == ["1", "2", "3", "4", "5", "6"]
    assert [r["total"] for r in rows[0]] == [r["total"] for r in rows[1]]


def test_resume_without_rng_restore_would_differ(setup: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: skipping the RNG restore changes the resumed run."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_teacher(setup, straight, resume=False, stop_at_step=None)
    train_teacher(setup, resumed, resume=False, stop_at_step=3)
    monkeypatch.setattr("monotakd_ros.training.run_state._restore_rank_rng",
                        lambda *args: None)
    train_teacher(setup, resumed, resume=True, stop_at_step=None)
    with pytest.raises(AssertionError):
        assert_bitwise_equal(straight / "checkpoints" / "last",
                             resumed / "checkpoints" / "last")


def test_cli_flow_resumes_exactly_with_workers(setup: dict[str, Path], tmp_path: Path) -> None:
    """Through run_stage with 2 loader workers: augmentation is seeded per sample."""
    train_yaml = write_yaml(tmp_path / "train.yaml",
                            {**TINY_TRAIN, "max_steps": 4, "workers": 2, "ckpt_interval": 2})
    request = StageRequest("ta", setup["model"], train_yaml, setup["data"], tmp_path / "a")
    run_stage(request)
    # Resume from the periodic step-2 checkpoint of the same run, copied into a fresh folder.
    other = RunDir(tmp_path / "b")
    shutil.copytree(RunDir(tmp_path / "a").step_checkpoint(2), other.last)
    run_stage(dataclasses.replace(request, out=other.root, resume=True))
    assert_bitwise_equal(RunDir(tmp_path / "a").last, other.last)


def test_resume_refusals(setup: dict[str, Path], tmp_path: Path) -> None:
    request = StageRequest("teacher", setup["model"], setup["train"], setup["data"],
                           tmp_path / "run", max_steps=2)
    with pytest.raises(CheckpointError, match=r"checkpoints/last: no checkpoint to resume"):
        run_stage(dataclasses.replace(request, resume=True))
    run_stage(request)
    with pytest.raises(ConfigError, match=r"already has a checkpoint; pass --resume"):
        run_stage(request)
    with pytest.raises(CheckpointError, match=r"is a 'teacher' run, cannot resume it as 'ta'"):
        run_stage(dataclasses.replace(request, stage="ta", resume=True))
    with pytest.raises(CheckpointError, match=r"total_steps was 2 and is now 5"):
        run_stage(dataclasses.replace(request, resume=True, max_steps=5))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_resume_after_a_kill_inside_a_checkpoint_save_is_exact(
        setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    options = {"ckpt_interval": 1, "max_steps": 4}
    train_teacher(setup, straight, resume=False, stop_at_step=None, **options)
    # Switches: step_1, last, step_2, last, step_3, then last at step 3 dies with its link
    # made but not yet renamed over `last`; a killed process removes nothing.
    switches = []

    def replace_until_killed(src: str, dst: str) -> None:
        switches.append(dst)
        if len(switches) == 6:
            raise Killed
        os.replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(atomic, "os", SimpleNamespace(**{**vars(os),
                                                       "replace": replace_until_killed}))
        patch.setattr(atomic, "_remove", lambda path: None)
        with pytest.raises(Killed):
            train_teacher(setup, killed, resume=False, stop_at_step=None, **options)
    run = RunDir(killed)
    assert json.loads((run.last / "trainer_state.json").read_text())["step"] == 2
    assert any(p.name.startswith(".last.link-") for p in run.checkpoints.iterdir())
    train_teacher(setup, killed, resume=True, stop_at_step=None, **options)
    assert_bitwise_equal(straight / "checkpoints" / "last", run.last)
    leftovers = {p.name for p in run.checkpoints.iterdir() if p.name.startswith(".last")}
    assert leftovers == {run.last.resolve().name}  # the interrupted save's files are gone


def test_a_run_saved_before_a_new_config_key_still_resumes(setup: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """A key the checkpoint predates (first-release default) is not a config change."""
    request = StageRequest("teacher", setup["model"], setup["train"], setup["data"],
                           tmp_path / "run", max_steps=2)
    run_stage(request)
    meta_file = (tmp_path / "run" / "checkpoints" / "last" / "meta.json").resolve()
    meta = json.loads(meta_file.read_text())
    assert meta["model_config"]["scnet"]["blocks"] == 0  # the key exists, at its default
    del meta["model_config"]["scnet"]  # as written before SCNet existed
    meta_file.write_text(json.dumps(meta))
    run_stage(dataclasses.replace(request, resume=True, max_steps=2))
    meta_file = (tmp_path / "run" / "checkpoints" / "last" / "meta.json").resolve()
    meta = json.loads(meta_file.read_text())
    meta["model_config"]["teacher"]["stem_convs"] += 1  # a real change is still refused
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"teacher\.stem_convs: checkpoint"):
        run_stage(dataclasses.replace(request, resume=True, max_steps=2))


def test_another_ranks_write_probe_is_not_a_saved_run(tmp_path: Path) -> None:
    # Under torchrun every rank checks the folder while another rank may be probing it.
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    (run.checkpoints / f"{WRITE_PROBE_PREFIX}123-abcd").write_bytes(b"ok")
    assert not has_saved_state(run)
    (run.checkpoints / "step_000002").mkdir()
    assert has_saved_state(run)
