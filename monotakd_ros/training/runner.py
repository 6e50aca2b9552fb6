"""One training stage end to end: configs → data → stage → trainer, as the CLI runs it."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import ModelConfig, load_model_config
from monotakd_ros.training.config import TrainConfig, load_train_config
from monotakd_ros.training.data_loading import (
    build_stage_data,
    build_val_dataset,
    build_val_loader,
    choose_threads,
    input_spec_for,
)
from monotakd_ros.training.distributed import DistContext, init_distributed
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import (
    RunDir,
    check_writable,
    has_saved_state,
    write_run_configs,
)
from monotakd_ros.training.stages import (
    STAGE_NAMES,
    Stage,
    build_stage,
    initialise_from,
)
from monotakd_ros.training.trainer import TrainSummary, Validator, train
from monotakd_ros.training.validation import evaluate_split

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageRequest:
    """Everything ``monotakd-train`` is asked to do (CLI flags override the train YAML)."""

    stage: str
    model_config: Path
    train_config: Path
    data: Path
    out: Path
    unlabeled_drives: tuple[Path, ...] = ()
    teacher: Path | None = None
    assistant: Path | None = None
    distill: str | None = None
    init_from: Path | None = None  # checkpoint whose weights start a new run (fine-tuning)
    resume: bool = False
    seed: int | None = None
    max_steps: int | None = None
    device: str | None = None
    cache_dir: Path | None = None  # prepared data and frozen targets (train.data_cache)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # any TrainConfig field
    command: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv))


def resolved_configs(request: StageRequest) -> tuple[ModelConfig, TrainConfig]:
    """Model and train configs with the request's overrides applied."""
    model_cfg = load_model_config(request.model_config)
    train_cfg = load_train_config(request.train_config, seed=request.seed,
                                  max_steps=request.max_steps, device=request.device,
                                  distill=request.distill, **request.train_overrides)
    return model_cfg, train_cfg


def _check_request(request: StageRequest, run: RunDir) -> None:
    if request.stage not in STAGE_NAMES:
        raise ConfigError(f"stage: expected one of {list(STAGE_NAMES)}, got {request.stage!r}")
    if request.unlabeled_drives and request.stage != "student":
        raise ConfigError(f"--unlabeled-drives: only the student stage learns from unlabelled "
                          f"frames, not {request.stage!r}")
    if request.stage != "student" and (request.teacher or request.assistant or request.distill):
        raise ConfigError(f"--teacher/--assistant/--distill: only for the student stage, not "
                          f"{request.stage!r}")
    if request.init_from is not None and request.resume:
        raise ConfigError("--init-from starts a new run; --resume continues one: pass one of them")
    if has_saved_state(run) and not request.resume:
        raise ConfigError(f"{run.checkpoints}: this run folder already has a checkpoint; pass "
                          "--resume to continue it or choose another --out")
    # Found now, not at the first checkpoint hundreds of steps in.
    check_writable(run.root, "--out")
    check_writable(run.checkpoints, "checkpoint folder")


def build_validator(request: StageRequest, cfg: TrainConfig, stage: Stage,
                    ctx: DistContext) -> Validator | None:
    """Validation on ``cfg.val_split`` (None when switched off).

    Every rank gets one, so that all of them take part in the step's collectives; the trainer
    runs it on rank 0 only.
    """
    if cfg.val_interval == 0:
        return None
    dataset = build_val_dataset(request.data, cfg.val_split, stage.spec)
    loader = build_val_loader(dataset, cfg, ctx)
    return lambda s: evaluate_split(s.predict, loader, dataset, ctx.device, cfg.val_max_frames)


def run_stage(request: StageRequest, stop_at_step: int | None = None,
              ctx: DistContext | None = None) -> TrainSummary:
    """Train one stage as described by ``request``; returns how the run ended."""
    run = RunDir(Path(request.out))
    _check_request(request, run)
    model_cfg, cfg = resolved_configs(request)
    ctx = ctx or init_distributed(cfg.device)
    seed_everything(cfg.seed)  # same initial weights on every rank
    spec = input_spec_for(model_cfg)
    stage = build_stage(request.stage, model_cfg, spec, cfg.detection,
                        cfg.distill_config() if request.stage == "student" else None,
                        request.teacher, request.assistant)
    if request.init_from is not None:  # same stage exactly, or TA -> student where shapes match
        initialise_from(Path(request.init_from), stage.name, model_cfg, stage.model)
    threads = choose_threads(cfg.threads, ctx.device)
    data = build_stage_data(stage, request.data, request.unlabeled_drives, cfg, ctx,
                            request.cache_dir)
    validator = build_validator(request, cfg, stage, ctx)
    if ctx.is_main:
        write_run_configs(run, stage, cfg, list(request.command))
    LOG.info("stage %s: %d parameters, %d frames/epoch/rank, device %s, %d rank(s), %d torch "
             "thread(s), %s data", stage.name, sum(p.numel() for p in stage.model.parameters()),
             data.batches_per_epoch * cfg.batch_size, ctx.device, ctx.world_size, threads,
             "prepared" if cfg.data_cache else "live")
    return train(stage, data, cfg, run, ctx, validator, resume=request.resume,
                 stop_at_step=stop_at_step)

