"""One distillation run end to end: build or resume, evaluate before, distil, evaluate after.

The node (both modes) and the bench drive this object; it owns no ROS and no threads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monotakd_ros.data.kitti.raw_mapping import guarded_drives
from monotakd_ros.distiller.bag_mode import (
    ProgressCallback,
    StopCheck,
    StopRequested,
    calib_from_file,
    check_bags,
    distill_bags,
    topic_overrides,
)
from monotakd_ros.distiller.engine import DistillEngine
from monotakd_ros.distiller.evaluation import evaluate_student, result_record
from monotakd_ros.distiller.rehearsal import LabelledReplay
from monotakd_ros.distiller.run_config import DistillerConfig
from monotakd_ros.errors import ConfigError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import ModelConfig, load_model_config, saved_model_config
from monotakd_ros.training.data_loading import input_spec_for
from monotakd_ros.training.distributed import resolve_device
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import (
    RunDir,
    check_writable,
    has_saved_state,
    resume_checkpoint,
)
from monotakd_ros.training.stages import Stage, build_stage, load_checked_checkpoint

LOG = logging.getLogger(__name__)
EVAL_RESULTS_FILE = "eval_results.json"


@dataclass(frozen=True)
class DistillSummary:
    """How a run ended: its last progress report, evaluations and final checkpoint."""

    report: dict[str, Any]
    eval_before: dict[str, Any] | None
    eval_after: dict[str, Any] | None
    checkpoint: Path


def model_config_of(config: DistillerConfig) -> ModelConfig:
    """The model config file, or the one stored in the teacher checkpoint when none is given."""
    if config.model_config is not None:
        return load_model_config(config.model_config)
    return saved_model_config(load_checkpoint_meta(config.teacher), config.teacher)


def build_student_stage(config: DistillerConfig) -> Stage:
    """Student stage with the frozen teacher and TA, starting from ``student_init`` if given."""
    model_cfg = model_config_of(config)
    seed_everything(config.train.seed)
    stage = build_stage("student", model_cfg, input_spec_for(model_cfg), config.train.detection,
                        config.train.distill_config(), config.teacher, config.assistant)
    if config.student_init is not None:
        # Checks the stage ("student") and that the architecture is identical.
        load_checked_checkpoint(config.student_init, "student", model_cfg, stage.model)
    return stage


def object_root_of(config: DistillerConfig) -> Path | None:
    """The KITTI object root whose ImageSets name the held-out splits: labelled, else eval."""
    for root in (config.labelled_data, config.eval_data):
        if root is not None and (Path(root) / "ImageSets").is_dir():
            return Path(root)
    return None


class DistillSession:
    """Owns the engine of one run and the evaluations around it."""

    def __init__(self, config: DistillerConfig) -> None:
        self.config = config
        self.run = RunDir(Path(config.out_dir))
        if has_saved_state(self.run) and not config.resume:
            raise ConfigError(f"{self.run.checkpoints}: this run folder already has a "
                              "checkpoint; set resume to continue it or choose another out_dir")
        resume_from = resume_checkpoint(self.run) if config.resume else None
        if config.mode == "bag" and config.leak_guard.mapping_file:
            config = self.config = dataclasses.replace(config, bags=tuple(
                guarded_drives(config.bags, config.leak_guard, object_root_of(config))))
            if not config.bags:
                raise ConfigError("bags: the leak guard skipped every bag (each holds "
                                  "held-out frames)")
        self.calib: CameraCalib | None = (calib_from_file(config.calib_file)
                                          if config.calib_file is not None else None)
        self.topics = topic_overrides(config.image_topic, config.camera_info_topic,
                                      config.point_cloud_topic)
        total_images = 0
        if config.mode == "bag":
            total_images = check_bags(config.bags, config.slop_s, self.calib, self.topics)
        self.total_images = total_images
        # After the inputs are known to be usable: a refused bag leaves no run folder behind.
        check_writable(self.run.root, "out_dir")
        check_writable(self.run.checkpoints, "checkpoint folder")
        horizon = config.train.max_steps or -(-total_images * config.passes
                                              // config.train.batch_size)
        self.run.root.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(config.train.device)
        self.stage = build_student_stage(config)
        replay = (LabelledReplay(config.labelled_data, config.labelled_split, self.stage.spec,
                                 config.labelled_per_step, config.train.seed)
                  if config.labelled_data is not None else None)
        self.engine = DistillEngine(self.stage, config.train, self.run, self.device, horizon,
                                    replay)
        if resume_from is not None:
            self.engine.restore(resume_from, keep_open_skips=config.mode == "topic")
            for orphan in atomic.remove_orphans(self.run.checkpoints, keep=resume_from):
                LOG.info("removed %s, left by an interrupted save", orphan)
        elif config.eval_data is not None:
            self.engine.eval_results["before"] = self.evaluate()
        LOG.info("distilling a %d-parameter student on %s; run folder %s",
                 sum(p.numel() for p in self.stage.model.parameters()), self.device,
                 self.run.root)

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the current student on ``eval_data``; returns the JSON-safe record."""
        if self.config.eval_data is None:
            raise ConfigError("eval_data: not set")
        result = evaluate_student(self.stage, self.config.eval_data, self.device,
                                  split=self.config.eval_split,
                                  max_frames=self.config.eval_max_frames,
                                  batch_size=self.config.train.batch_size,
                                  slop_s=self.config.slop_s, calib=self.calib)
        LOG.info("evaluation on %s (%d frames): Car AP3D R40 %.2f / %.2f / %.2f",
                 self.config.eval_data, result.num_frames, *result.ap3d_r40)
        return result_record(result)

    def run_bags(self, on_progress: ProgressCallback | None = None,
                 show_bar: bool | None = None, should_stop: StopCheck | None = None) -> None:
        """Bag mode: read every bag (all passes) into the engine.

        When ``should_stop`` answers True (asked after every frame), the learnt steps are saved
        to ``checkpoints/last`` and StopRequested is raised; ``resume`` continues from there.
        """
        show_bar = self.config.show_progress_bar if show_bar is None else show_bar
        try:
            distill_bags(self.engine, self.config.bags, self.config.passes, self.config.slop_s,
                         self.calib, self.topics, on_progress, self.config.progress_period_s,
                         show_bar, self.total_images, should_stop)
        except StopRequested:
            self.engine.save()
            raise

    def finish(self) -> DistillSummary:
        """Learn from queued frames, evaluate after, save the final checkpoint and results."""
        self.engine.flush()
        if self.config.eval_data is not None:
            self.engine.eval_results["after"] = self.evaluate()
        checkpoint = self.engine.save()
        results = {"before": self.engine.eval_results.get("before"),
                   "after": self.engine.eval_results.get("after"),
                   "report": self.engine.report()}
        (self.run.root / EVAL_RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
        return DistillSummary(report=results["report"], eval_before=results["before"],
                              eval_after=results["after"], checkpoint=checkpoint)


def format_evaluations(summary: DistillSummary) -> str:
    """Both KITTI tables, labelled, for the console and the log."""
    parts = []
    for label, record in (("BEFORE distillation", summary.eval_before),
                          ("AFTER distillation", summary.eval_after)):
        if record is not None:
            parts.append(f"=== {label} ===\n{record['table']}")
    return "\n".join(parts)
