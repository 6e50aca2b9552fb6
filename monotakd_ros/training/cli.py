"""``monotakd-train``: train the LiDAR teacher, the TA or the distilled student."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from monotakd_ros.distill.config import DISTILL_MODES
from monotakd_ros.errors import MonotakdError
from monotakd_ros.training.distributed import shutdown_distributed
from monotakd_ros.training.run_state import check_writable
from monotakd_ros.training.runner import StageRequest, run_stage
from monotakd_ros.training.stages import STAGE_NAMES

LOG = logging.getLogger("monotakd_ros.training.cli")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of monotakd-train."""
    parser = argparse.ArgumentParser(
        prog="monotakd-train",
        description="Train one MonoTAKD stage: the LiDAR teacher, the teaching assistant (camera "
        "model with LiDAR depth) or the student distilled from both. Run under torchrun for DDP.")
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--model-config", type=Path, required=True,
                        help="model YAML, e.g. config/models/small.yaml")
    parser.add_argument("--train-config", type=Path, required=True,
                        help="training YAML, e.g. config/train/student.yaml")
    parser.add_argument("--data", type=Path, required=True,
                        help="KITTI object root (ImageSets/, training/)")
    parser.add_argument("--unlabeled-drives", type=Path, nargs="+", default=[],
                        help="KITTI raw synced drive folders; student stage only")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint folder")
    parser.add_argument("--assistant", type=Path, default=None, help="TA checkpoint folder")
    parser.add_argument("--distill", choices=DISTILL_MODES, default=None,
                        help="distillation preset (default: the train config's)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="checkpoint of the same stage and model config whose weights start "
                        "this run (fine-tuning; fresh optimiser and schedule), or a TA checkpoint "
                        "that starts the student where names and shapes match (as upstream)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out exactly from its last checkpoint")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="optimiser steps of the whole run (overrides epochs)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--data-cache", action=argparse.BooleanOptionalAction, default=None,
                        help="train on the prepared split (default: the train config's "
                        "data_cache)")
    parser.add_argument("--frozen-cache", choices=("off", "fp16", "fp32"), default=None,
                        help="student: read the teacher/TA targets from their cache (default: "
                        "the train config's frozen_cache)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="folder of the prepared data and frozen targets (train.data_cache, "
                        "train.frozen_cache); default $MONOTAKD_CACHE or ~/.cache/monotakd_ros")
    parser.add_argument("--log-level", default="INFO")
    return parser


def _configure_logging(level: str, out: Path) -> logging.Handler | None:
    """Console logging, plus ``RUN_DIR/train.log`` on rank 0 (returned, to detach it later)."""
    is_main = int(os.environ.get("RANK", "0")) == 0
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(format=fmt)
    root = logging.getLogger()
    root.setLevel(level.upper() if is_main else logging.WARNING)
    if not is_main:
        return None
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        check_writable(args.out, "--out")  # before train.log is opened there
    except MonotakdError as err:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        LOG.error("%s", err)
        return 2
    log_file = _configure_logging(args.log_level, args.out)
    request = StageRequest(
        stage=args.stage, model_config=args.model_config, train_config=args.train_config,
        data=args.data, out=args.out, unlabeled_drives=tuple(args.unlabeled_drives),
        teacher=args.teacher, assistant=args.assistant, distill=args.distill,
        init_from=args.init_from, resume=args.resume, seed=args.seed,
        max_steps=args.max_steps, device=args.device, cache_dir=args.cache_dir,
        train_overrides={key: value for key, value in (("data_cache", args.data_cache),
                                                       ("frozen_cache", args.frozen_cache))
                         if value is not None},
        command=("monotakd-train", *(sys.argv[1:] if argv is None else argv)))
    try:
        summary = run_stage(request)
        LOG.info("finished at step %d/%d; best Car AP3D R40 Moderate %s at step %s",
                 summary.step, summary.total_steps, summary.best_metric, summary.best_step)
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    except KeyboardInterrupt:
        LOG.warning("interrupted; continue with --resume from the last checkpoint")
        return 130
    finally:
        shutdown_distributed()
        if log_file is not None:
            logging.getLogger().removeHandler(log_file)
            log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
