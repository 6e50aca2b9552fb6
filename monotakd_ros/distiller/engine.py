"""Distillation engine: learn the student from a frozen teacher and TA on streamed frames.

Frames (camera image, P, LiDAR points and their extrinsic) are offered one at a time from any
source: a bag read at full speed or live topics. Each frame becomes a FrameSample through the
datasets' code path; a full batch makes one iteration of the training loop
(``training.loop.TrainingIteration``: LR schedule, frozen targets, the student stage's loss,
``OptimizerStep`` with AMP, clipping and the non-finite policy, the CSV row), the same one
``monotakd-train`` runs, and the resume checks are ``training.step``'s. This engine is only the
data source: it decides which frames make a batch and when. Labels are never needed:
unlabelled samples carry no targets, and only the feature (IMD, CMRD) and response terms act.
Optionally, labelled frames join every step (``replay``), so the ground-truth detection loss
keeps acting.

Checkpoints (``model_io.checkpoint``, atomic) hold weights, optimizer, AMP scaler, RNG, the frame
ledger and skip counts, so a resumed run continues exactly where its last checkpoint stood and
never learns from a frame twice in a pass.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import torch

from monotakd_ros.bags.frame_reader import BagFrame
from monotakd_ros.data.batch import FrameSample, collate_frames
from monotakd_ros.distiller.ledger import FrameLedger, SkipTally
from monotakd_ros.distiller.rehearsal import LabelledReplay
from monotakd_ros.distiller.samples import frame_id_of, sample_from_bag_frame
from monotakd_ros.errors import CheckpointError, ConfigError, MonotakdError
from monotakd_ros.model_io.checkpoint import TrainState
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.logging_utils import CsvLog
from monotakd_ros.training.loop import TrainingIteration
from monotakd_ros.training.rng_state import capture_rng_state, restore_rng_state
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.stages import Stage
from monotakd_ros.training.step import OptimizerStep, restore_step_state, save_step_state

LOG = logging.getLogger(__name__)
FRAMES_LOG = "frames_log.csv"
_LOSS_WINDOW = 20  # steps averaged in the progress report


class DistillEngine:
    """Offer frames; every ``batch_size`` of them the student takes one optimiser step."""

    def __init__(self, stage: Stage, train: TrainConfig, run: RunDir, device: torch.device,
                 horizon_steps: int = 0, replay: LabelledReplay | None = None) -> None:
        if stage.name != "student" or stage.frozen is None:
            raise ConfigError(f"the distiller trains a student stage with frozen models, "
                                  f"got stage {stage.name!r}")
        self.stage = stage.to(device)
        self.stage.model.train()
        self.train = train
        self.run = run
        self.device = device
        self.horizon_steps = horizon_steps or train.max_steps
        self.stepper = OptimizerStep(stage.model, train, device)
        self.train_log = CsvLog(run.train_csv)
        self.iteration = TrainingIteration(self.stage, self.stepper, train, device, self.train_log)
        self.replay = replay
        self.step = 0
        self.ledger = FrameLedger()
        self.skips = SkipTally()
        self.source_skips: Counter[str] | None = None  # live counts of the source being read
        self.already_used = 0  # offered again after a resume: learnt before, not counted
        self.eval_results: dict[str, Any] = {}  # "before"/"after" metrics kept in checkpoints
        self.last_losses: dict[str, float] = {}
        self._recent: deque[dict[str, float]] = deque(maxlen=_LOSS_WINDOW)
        self._pending: list[tuple[str, int, FrameSample]] = []
        self._frames_this_run = 0
        self._steps_this_run = 0
        self._started: float | None = None
        self._step_seconds = 0.0
        self.frames_log = CsvLog(run.root / FRAMES_LOG)

    @property
    def finished(self) -> bool:
        """True once ``train.max_steps`` (when set) steps are done."""
        return 0 < self.train.max_steps <= self.step

    def offer(self, source: str, frame: BagFrame) -> bool:
        """Queue a frame for the next step; False if it was used before or cannot be used."""
        if self.finished:
            return False
        if self._started is None:
            self._started = time.perf_counter()
        if self.ledger.contains(source, frame.stamp_ns) or any(
                s == source and t == frame.stamp_ns for s, t, _ in self._pending):
            self.already_used += 1
            return False
        try:
            sample = sample_from_bag_frame(frame, self.stage.spec,
                                           frame_id_of(source, frame.stamp_ns))
        except (MonotakdError, ValueError) as err:
            self.skip("bad_frame")
            LOG.warning("%s: frame at %d ns skipped, unusable (%s)", source, frame.stamp_ns, err)
            return False
        self._pending.append((source, frame.stamp_ns, sample))
        if len(self._pending) >= self.train.batch_size:
            self._optimizer_step()
        return True

    def skip(self, reason: str, count: int = 1) -> None:
        """Count frames of the current source left out for ``reason``."""
        self.skips.add(reason, count)

    def flush(self) -> None:
        """Learn from the queued frames now, even if fewer than a batch."""
        if self._pending and not self.finished:
            self._optimizer_step()
        self._pending.clear()

    def finish_source(self, source: str, source_skips: Counter[str] | None = None) -> None:
        """A source was read to its end: learn its last frames and seal its skip counts."""
        self.flush()
        self.ledger.finish_source(source)
        self.skips.close_source(source_skips)
        self.source_skips = None

    def start_next_pass(self) -> None:
        """Begin another pass over the sources: each frame may be used once more."""
        self.flush()
        self.ledger.start_next_pass()

    def _optimizer_step(self) -> None:
        """One iteration of the training loop on the queued frames (plus replayed ones)."""
        pending, self._pending = self._pending, []
        samples = [sample for _, _, sample in pending]
        if self.replay is not None:
            samples += self.replay.samples_for_step(self.step)
        result = self.iteration.run(self.step, self.horizon_steps,
                                    lambda: collate_frames(samples))
        if not result.applied:  # skipped, counted and logged by the stepper
            self.skip("nonfinite_loss", len(pending))
            return
        self.step += 1
        for source, stamp_ns, _ in pending:
            self.ledger.add(source, stamp_ns)
            self.frames_log.append(self.step, {"source": source, "stamp_ns": stamp_ns})
        self._frames_this_run += len(pending)
        self._steps_this_run += 1
        self._step_seconds += result.seconds
        self.last_losses = result.losses
        self._recent.append(result.losses)
        self.iteration.log(self.step, result, {"frames": len(pending)})
        if self.train.log_interval and self.step % self.train.log_interval == 0:
            LOG.info("step %d: loss %.4f (%d frames used, lr %.2e)", self.step,
                     result.losses["total"], self.ledger.frames_used_total, result.lr)
        if self.train.ckpt_interval and self.step % self.train.ckpt_interval == 0:
            self.save()

    def mean_recent_losses(self) -> dict[str, float]:
        """Each loss term averaged over the last steps (up to 20)."""
        if not self._recent:
            return {}
        names = self._recent[-1].keys()
        return {n: sum(r.get(n, 0.0) for r in self._recent) / len(self._recent) for n in names}

    def report(self) -> dict[str, Any]:
        """Progress: frames used and skipped (by reason), loss terms, throughput."""
        elapsed = time.perf_counter() - self._started if self._started else 0.0
        skipped = self.skips.totals(self.source_skips)
        return {
            "step": self.step,
            "pass": self.ledger.pass_index,
            "frames_used": self.ledger.frames_used_total,
            "frames_used_this_pass": len(self.ledger),
            "labelled_frames_used": self.step * self.replay.per_step if self.replay else 0,
            "frames_skipped": sum(skipped.values()),
            "skipped": skipped,
            "already_used": self.already_used,
            "losses": dict(self.last_losses),
            "losses_mean": self.mean_recent_losses(),
            "frames_per_s": self._frames_this_run / elapsed if elapsed > 0 else 0.0,
            # learning alone (targets, loss, step), without reading and waiting for frames
            "learn_frames_per_s": (self._frames_this_run / self._step_seconds
                                   if self._step_seconds > 0 else 0.0),
            "step_time_s": self._step_seconds / max(1, self._steps_this_run),
            "elapsed_s": elapsed,
            "finished": self.finished,
        }

    def save(self, path: Path | None = None) -> Path:
        """Atomic checkpoint of the state after ``step`` steps (queued frames are not in it)."""
        path = Path(path) if path is not None else self.run.last
        state = TrainState(step=self.step, epoch=self.ledger.pass_index,
                           rng=capture_rng_state(), extra={
                               "ledger": self.ledger.to_data(),
                               "skipped": self.skips.to_data(),
                               "eval_results": self.eval_results,
                               "horizon_steps": self.horizon_steps,
                           })
        save_step_state(path, self.stage, self.stepper, state, self._checkpoint_metrics())
        LOG.info("checkpoint %s: step %d, %d frames used", path, self.step,
                 self.ledger.frames_used_total)
        return path

    def _checkpoint_metrics(self) -> dict[str, float]:
        after = self.eval_results.get("after", {}).get("metrics", {})
        return {k: float(v) for k, v in after.items()}

    def restore(self, path: Path, keep_open_skips: bool) -> None:
        """Continue from a checkpoint ``save`` wrote (same model config and run kind)."""
        path = Path(path)

        def has_ledger(state: TrainState) -> None:
            if "ledger" not in state.extra:
                raise CheckpointError(f"{path}: has no frame ledger; it was not written by the "
                                      "distiller (use it as student_init instead of resuming)")

        state = restore_step_state(path, self.stage, self.stepper, has_ledger)
        restore_rng_state(state.rng)
        self.step = state.step
        self.ledger = FrameLedger.from_data(state.extra["ledger"], str(path))
        self.skips = SkipTally.from_data(state.extra["skipped"], str(path), keep_open_skips)
        self.eval_results = dict(state.extra.get("eval_results") or {})
        self.horizon_steps = int(state.extra.get("horizon_steps") or self.horizon_steps)
        # Rows after the checkpoint describe steps whose weights were lost.
        self.train_log.truncate_after(self.step + 1)
        self.frames_log.truncate_after(self.step + 1)
        LOG.info("resumed %s at step %d: pass %d, %d frames used", path, self.step,
                 self.ledger.pass_index, self.ledger.frames_used_total)
