"""The one optimiser step: finite steps apply, non-finite ones are skipped and counted, N abort."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.data.batch import FrameBatch
from monotakd_ros.errors import TrainingError
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config
from monotakd_ros.training.data_loading import (
    build_train_dataset,
    build_train_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.stages import build_stage
from monotakd_ros.training.step import OptimizerStep
from monotakd_ros.training.trainer import train

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
NAN = float("nan")


def stepper_of(**cfg: object) -> tuple[nn.Linear, OptimizerStep]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, OptimizerStep(model, TrainConfig(**{"lr": 0.1, **cfg}), torch.device("cpu"))


def forward_of(model: nn.Module, scale: float = 1.0):  # noqa: ANN201
    def forward(micro: int) -> dict[str, torch.Tensor]:
        loss = model(torch.ones(4, 3)).pow(2).mean() * scale
        return {"total": loss, "fit": loss.detach()}
    return forward


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("grad_clip", [10.0, 0.0])
def test_nan_loss_changes_nothing_and_is_counted(grad_clip: float) -> None:
    model, stepper = stepper_of(grad_clip=grad_clip)
    assert stepper.run(forward_of(model), step=1).applied
    before, adam_before = snapshot(model), dict(stepper.optimizer.state_dict()["state"][0])
    outcome = stepper.run(forward_of(model, scale=NAN), step=2)
    assert not outcome.applied and outcome.losses["fit"] != outcome.losses["fit"]  # NaN
    assert_same(before, snapshot(model))
    assert all(p.grad is None for p in model.parameters())  # zeroed for the next step
    adam_after = stepper.optimizer.state_dict()["state"][0]
    assert adam_after["step"] == adam_before["step"] == 1  # AdamW did not step either
    assert torch.equal(adam_after["exp_avg"], adam_before["exp_avg"])
    assert (stepper.nonfinite_in_row, stepper.nonfinite_total) == (1, 1)
    assert stepper.run(forward_of(model), step=3).applied
    assert (stepper.nonfinite_in_row, stepper.nonfinite_total) == (0, 1)
    assert not torch.equal(before["weight"], model.weight)


@pytest.mark.parametrize("grad_clip", [10.0, 0.0])
def test_nan_gradient_with_a_finite_loss_is_skipped(grad_clip: float) -> None:
    model, stepper = stepper_of(grad_clip=grad_clip)
    before = snapshot(model)
    handle = model.weight.register_hook(lambda grad: grad * NAN)
    outcome = stepper.run(forward_of(model), step=1)
    handle.remove()
    assert not outcome.applied and outcome.losses["total"] > 0.0
    assert_same(before, snapshot(model))


def test_n_non_finite_steps_in_a_row_abort_with_a_clear_message() -> None:
    model, stepper = stepper_of(max_nonfinite_steps=3)
    for step in (1, 2):
        assert not stepper.run(forward_of(model, scale=NAN), step=step).applied
    assert stepper.run(forward_of(model), step=3).applied  # a good step resets the count
    for step in (4, 5):
        stepper.run(forward_of(model, scale=NAN), step=step)
    with pytest.raises(TrainingError, match=r"3 steps in a row \(up to step 6\) had a "
                       r"non-finite loss or gradients \(train\.max_nonfinite_steps = 3\)"):
        stepper.run(forward_of(model, scale=NAN), step=6)


class NanOnCalls(nn.Module):
    """Makes the loss NaN on chosen forward calls; records the weights each call saw."""

    def __init__(self, inner: nn.Module, model: nn.Module, nan_calls: set[int]) -> None:
        super().__init__()
        self.inner, self.nan_calls = inner, nan_calls
        self.watched = [model]  # a list: not registered as a submodule
        self.seen: list[dict[str, torch.Tensor]] = []

    def forward(self, batch: FrameBatch, frozen: object) -> dict[str, torch.Tensor]:
        self.seen.append(snapshot(self.watched[0]))
        terms = self.inner(batch, frozen)
        if len(self.seen) in self.nan_calls:
            terms["total"] = terms["total"] * NAN
        return terms


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("step")
    return {"data": write_tiny_kitti(root / "kitti", num_train=4, num_val=1),
            "model": write_yaml(root / "model.yaml", TINY_MODEL),
            "train": write_yaml(root / "train.yaml", {**TINY_TRAIN, "max_steps": 3})}


def train_with_nan(tiny: dict[str, Path], out: Path, nan_calls: set[int],
                   **overrides: object) -> NanOnCalls:
    model_cfg = load_model_config(tiny["model"])
    cfg = dataclasses.replace(load_train_config(tiny["train"]), **overrides)
    seed_everything(cfg.seed)
    spec = input_spec_for(model_cfg)
    stage = build_stage("teacher", model_cfg, spec, cfg.detection)
    stage.loss_module = wrapper = NanOnCalls(stage.loss_module, stage.model, nan_calls)
    data = build_train_loader(build_train_dataset(tiny["data"], "train", spec), cfg, CPU)
    train(stage, data, cfg, RunDir(out), CPU)
    return wrapper


def test_trainer_skips_a_nan_step_without_touching_the_weights(tiny: dict[str, Path],
                                                               tmp_path: Path) -> None:
    wrapper = train_with_nan(tiny, tmp_path / "run", nan_calls={2})
    assert len(wrapper.seen) == 3
    assert_same(wrapper.seen[1], wrapper.seen[2])  # step 2 was skipped
    assert not torch.equal(wrapper.seen[0]["head.cls.weight"], wrapper.seen[1]["head.cls.weight"])
    with (tmp_path / "run" / "train_log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert [r["skipped_nonfinite"] for r in rows] == ["", "1", ""]


def test_trainer_aborts_after_n_nan_steps_in_a_row(tiny: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="2 steps in a row"):
        train_with_nan(tiny, tmp_path / "run", nan_calls={1, 2, 3}, max_nonfinite_steps=2)
