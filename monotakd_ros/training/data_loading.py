"""Datasets and loaders for training: labelled KITTI mixed with unlabelled raw drives.

Exact resumption needs every random draw of the data pipeline to be a function of
(seed, epoch, position): the sampler's order depends on (seed, epoch) only, each sample's
augmentation is drawn from a generator seeded with (seed, epoch, index), and DataLoader gets its
own generator so that creating an iterator never touches the global torch RNG.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from monotakd_ros.data.augment import AugmentConfig
from monotakd_ros.data.batch import FrameBatch, FrameSample, collate_frames
from monotakd_ros.data.datasets import KittiFrameDataset, RawDriveFrameDataset, split_frame_ids
from monotakd_ros.data.kitti.object_dataset import KittiObjectDataset
from monotakd_ros.data.kitti.raw_mapping import guarded_drives
from monotakd_ros.data.prepared.batches import PreparedFrames, draw_augmentation, resident_bytes
from monotakd_ros.data.prepared.split_store import SplitSource, prepared_split
from monotakd_ros.data.prepared.store import format_bytes
from monotakd_ros.errors import ConfigError, DatasetError
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.models.config import ModelConfig
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.distributed import DistContext, ResumableDistributedSampler
from monotakd_ros.training.frozen_targets import cached_frozen_targets
from monotakd_ros.training.repeat_factors import split_repeats
from monotakd_ros.training.stages import FrozenModels, Stage

LOG = logging.getLogger(__name__)

_SEED_STRIDE = 1_000_003  # keeps (seed, epoch, index) seeds apart for any realistic sizes


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the random draws of sample ``index`` in ``epoch`` of a run seeded ``seed``."""
    return ((seed * _SEED_STRIDE + epoch) * _SEED_STRIDE + index) % 2**63


def input_spec_for(cfg: ModelConfig) -> InputSpec:
    """The data pipeline's InputSpec matching a model config (size, normalisation, grid)."""
    grid = cfg.grid
    point_range = (grid.x_range_m[0], grid.y_range_m[0], grid.z_range_m[0],
                   grid.x_range_m[1], grid.y_range_m[1], grid.z_range_m[1])
    return InputSpec(input_hw=tuple(cfg.image.input_hw), mean=tuple(cfg.image.mean),
                     std=tuple(cfg.image.std), class_names=cfg.head.class_names,
                     point_range=point_range)


class EpochSeededDataset(Dataset[FrameSample]):
    """Runs each ``__getitem__`` under a torch RNG seeded from (seed, epoch, index).

    The datasets draw their augmentation from torch's global RNG, so this makes every sample a
    pure function of its position, whichever worker loads it and whether the run was resumed.
    """

    def __init__(self, inner: Dataset[FrameSample], seed: int) -> None:
        self.inner = inner
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Epoch whose seeds the next iterator uses (workers copy the dataset per iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Length of the wrapped dataset."""
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> FrameSample:
        """Sample ``index`` with its own, reproducible random draws."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            return self.inner[index]


def build_train_dataset(data_root: Path, split: str, spec: InputSpec,
                        unlabeled_drives: Sequence[Path] = (),
                        augment: AugmentConfig | None = None,
                        with_labels: bool = True,
                        hidden_label_split: str = "") -> Dataset[FrameSample]:
    """Labelled KITTI split, then a split with its labels hidden, then raw-drive frames.

    ``hidden_label_split`` frames come from the same object set as ``split`` (the same scene
    distribution) but enter as unlabelled frames: no targets, ``has_labels`` False.
    """
    labelled = KittiFrameDataset(data_root, split, spec, with_labels=with_labels,
                                 augment=augment)
    parts: list[Dataset[FrameSample]] = [labelled]
    if hidden_label_split:
        hidden = KittiFrameDataset(data_root, hidden_label_split, spec, with_labels=False,
                                   augment=augment)
        check_disjoint_frames(labelled.frame_ids, hidden.frame_ids, f"train_split {split!r}",
                              f"train.hidden_label_split {hidden_label_split!r}")
        parts.append(hidden)
    if unlabeled_drives:
        parts.append(RawDriveFrameDataset(list(unlabeled_drives), spec, augment=augment))
    if len(parts) == 1:
        return labelled
    LOG.info("training on %d labelled + %d unlabelled frames", len(labelled),
             sum(len(p) for p in parts[1:]))  # type: ignore[arg-type]
    return ConcatDataset(parts)


def check_disjoint_frames(first_ids: Sequence[str], second_ids: Sequence[str], first: str,
                          second: str) -> None:
    """DatasetError naming a shared frame when two splits that must be disjoint are not."""
    shared = sorted(set(first_ids) & set(second_ids))
    if shared:
        raise DatasetError(f"{second} shares {len(shared)} frame(s) with {first}, e.g. "
                           f"{shared[0]}: the two must be disjoint")


def build_val_dataset(data_root: Path, split: str, spec: InputSpec) -> KittiFrameDataset:
    """Labelled validation split, without augmentation."""
    return KittiFrameDataset(data_root, split, spec, with_labels=True, augment=None)


@dataclass
class TrainLoader:
    """Loader, sampler and seeded dataset of one rank, plus the epoch geometry in batches."""

    loader: DataLoader
    sampler: ResumableDistributedSampler
    dataset: EpochSeededDataset
    generator: torch.Generator
    batch_size: int
    batches_per_epoch: int  # per rank; equal on every rank (drop_last sharding)
    seed: int

    def batches(self, epoch: int, batch_in_epoch: int,
                num_batches: int) -> Iterator[FrameBatch]:
        """Batches from (epoch, batch_in_epoch) on, ``num_batches`` per epoch, endlessly."""
        while True:
            self.sampler.set_position(epoch, batch_in_epoch * self.batch_size)
            self.dataset.set_epoch(epoch)
            self.generator.manual_seed(self.seed * _SEED_STRIDE + epoch)
            yield from islice(self.loader, num_batches - batch_in_epoch)
            epoch, batch_in_epoch = epoch + 1, 0


def checked_batches_per_epoch(sampler: ResumableDistributedSampler, num_frames: int,
                              cfg: TrainConfig, ctx: DistContext) -> int:
    """Full batches per epoch on this rank; DatasetError when fewer than ``grad_accum``."""
    batches_per_epoch = sampler.num_samples // cfg.batch_size
    if batches_per_epoch < cfg.grad_accum:
        raise DatasetError(
            f"training set of {num_frames} frames gives {batches_per_epoch} batches of "
            f"{cfg.batch_size} per rank ({ctx.world_size} ranks); need at least grad_accum = "
            f"{cfg.grad_accum}")
    return batches_per_epoch


def build_train_loader(dataset: Dataset[FrameSample], cfg: TrainConfig,
                       ctx: DistContext, repeats: Sequence[int] | None = None) -> TrainLoader:
    """Sharded, shuffled, fixed-size batches of ``dataset`` (frame i ``repeats[i]`` times)."""
    seeded = EpochSeededDataset(dataset, cfg.seed)
    sampler = ResumableDistributedSampler(seeded, ctx, seed=cfg.seed, shuffle=True,
                                          repeats=repeats)
    batches_per_epoch = checked_batches_per_epoch(sampler, len(seeded), cfg, ctx)
    generator = torch.Generator()
    loader = DataLoader(seeded, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.workers, collate_fn=collate_frames,
                        pin_memory=ctx.device.type == "cuda", generator=generator,
                        persistent_workers=False)
    return TrainLoader(loader=loader, sampler=sampler, dataset=seeded, generator=generator,
                       batch_size=cfg.batch_size, batches_per_epoch=batches_per_epoch,
                       seed=cfg.seed)


def build_val_loader(dataset: Dataset[FrameSample], cfg: TrainConfig,
                     ctx: DistContext) -> DataLoader:
    """In-order loader over the validation set (rank 0 validates alone)."""
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False,
                      num_workers=cfg.workers, collate_fn=collate_frames,
                      pin_memory=ctx.device.type == "cuda",
                      generator=torch.Generator().manual_seed(cfg.seed))


@dataclass
class PreparedTrainLoader:
    """TrainLoader's contract over a prepared split: batches gathered by index, no workers.

    The order of an epoch depends on (seed, epoch) through the same sharded sampler, and each
    frame's augmentation on (seed, epoch, index), so a resumed run draws the same batches.
    """

    frames: PreparedFrames
    sampler: ResumableDistributedSampler
    augment: AugmentConfig | None
    batch_size: int
    batches_per_epoch: int
    seed: int

    def batches(self, epoch: int, batch_in_epoch: int,
                num_batches: int) -> Iterator[FrameBatch]:
        """Batches from (epoch, batch_in_epoch) on, ``num_batches`` per epoch, endlessly."""
        size = self.batch_size
        while True:
            self.sampler.set_position(epoch, batch_in_epoch * size)
            order = list(self.sampler)
            for k in range(num_batches - batch_in_epoch):
                rows = order[k * size:(k + 1) * size]
                seeds = [sample_seed(self.seed, epoch, row) for row in rows]
                yield self.frames.batch(rows, draw_augmentation(self.augment, seeds))
            epoch, batch_in_epoch = epoch + 1, 0


def free_device_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's free bytes, or the host's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits_on_device(needed_bytes: int, device: torch.device, mode: str, what: str) -> bool:
    """Whether ``what`` stays on ``device``: ``on``, ``off`` or ``auto`` (fits with 20 % spare)."""
    if mode == "off":
        return False
    free = free_device_bytes(device)
    fits = needed_bytes * 1.2 < free
    if mode == "on" and not fits:
        raise DatasetError(f"train.resident: on, but {what} needs {format_bytes(needed_bytes)} "
                           f"(+20 % margin) on {device} and {format_bytes(free)} are free; set "
                           "resident: auto or off")
    LOG.info("%s: %s on %s (%s needed, %s free)", what,
             "resident" if fits else "memory-mapped", device, format_bytes(needed_bytes),
             format_bytes(free))
    return fits


def build_prepared_loader(data_root: Path, cfg: TrainConfig, spec: InputSpec, ctx: DistContext,
                          cache_dir: Path, class_names: Sequence[str] = ()
                          ) -> PreparedTrainLoader:
    """The training split prepared (or read from ``cache_dir``) and batched on the device."""
    store = prepared_split(SplitSource(data_root, cfg.train_split, spec), cache_dir,
                           workers=cfg.workers)
    resident = fits_on_device(resident_bytes(store), ctx.device, cfg.resident,
                              "the prepared split")
    frames = PreparedFrames(store, spec, ctx.device, resident)
    repeats = None
    if cfg.repeat_factor_threshold > 0:
        repeats = split_repeats(data_root, frames.frame_ids, class_names,
                                cfg.repeat_factor_threshold, cfg.seed)
    sampler = ResumableDistributedSampler(frames, ctx, seed=cfg.seed, shuffle=True,
                                          repeats=repeats)
    batches_per_epoch = checked_batches_per_epoch(sampler, len(frames), cfg, ctx)
    return PreparedTrainLoader(frames=frames, sampler=sampler, augment=cfg.augment,
                               batch_size=cfg.batch_size, batches_per_epoch=batches_per_epoch,
                               seed=cfg.seed)


def choose_threads(requested: int, device: torch.device) -> int:
    """Torch CPU threads: ``requested``, else 1 on a CPU of <= 2 cores, else torch's default.

    On the shared 2-core machine one thread ran the distiller 4x and the student step 4.9x
    faster than two under load (design notes section 6, docs/benchmarks.md); on a GPU the CPU
    only feeds the device.
    """
    if requested > 0:
        threads = requested
    elif device.type == "cpu" and (os.cpu_count() or 1) <= 2:
        threads = 1
    else:
        threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


def build_stage_data(stage: Stage, data_root: Path, unlabeled_drives: Sequence[Path],
                     cfg: TrainConfig, ctx: DistContext,
                     cache_dir: Path | None) -> TrainLoader | PreparedTrainLoader:
    """Live loader, or the prepared split (``data_cache``) plus cached frozen targets."""
    unlabeled_drives = guarded_drives(unlabeled_drives, cfg.leak_guard, data_root)
    class_names = stage.model_cfg.head.class_names
    if cfg.hidden_label_split and stage.name != "student":
        raise ConfigError(f"train.hidden_label_split: only the student stage learns from "
                          f"frames without labels, not {stage.name!r}")
    if cfg.hidden_label_split:  # validation frames must not train, labelled or not
        kitti = KittiObjectDataset(data_root)
        check_disjoint_frames(split_frame_ids(kitti, cfg.val_split),
                              split_frame_ids(kitti, cfg.hidden_label_split),
                              f"val_split {cfg.val_split!r}",
                              f"train.hidden_label_split {cfg.hidden_label_split!r}")
    if not cfg.data_cache or unlabeled_drives or cfg.hidden_label_split:
        if cfg.data_cache:
            LOG.warning("train.data_cache: unlabelled frames (raw drives, hidden_label_split) "
                        "are read live; the labelled split is too in this run")
        dataset = build_train_dataset(data_root, cfg.train_split, stage.spec, unlabeled_drives,
                                      augment=cfg.augment,
                                      hidden_label_split=cfg.hidden_label_split)
        repeats = None
        if cfg.repeat_factor_threshold > 0:
            labelled_ids = split_frame_ids(KittiObjectDataset(data_root), cfg.train_split)
            repeats = split_repeats(data_root, labelled_ids, class_names,
                                    cfg.repeat_factor_threshold, cfg.seed,
                                    unlabelled_frames=len(dataset) - len(labelled_ids))
        return build_train_loader(dataset, cfg, ctx, repeats)
    cache_dir = cache_dir or default_cache_dir()
    loader = build_prepared_loader(data_root, cfg, stage.spec, ctx, cache_dir, class_names)
    frozen_models = stage.frozen
    if (cfg.frozen_cache != "off" and isinstance(frozen_models, FrozenModels)
            and (frozen_models.teacher is not None or frozen_models.assistant is not None)):
        frozen = cached_frozen_targets(frozen_models, loader.frames, stage.model_cfg, cache_dir,
                                       cfg.frozen_cache)
        frozen.resident = fits_on_device(frozen.nbytes, ctx.device, cfg.resident,
                                         "the frozen teacher/TA targets")
        stage.frozen = frozen.to(ctx.device)  # type: ignore[assignment]
    return loader


def default_cache_dir() -> Path:
    """``$MONOTAKD_CACHE``, else ``~/.cache/monotakd_ros``."""
    override = os.environ.get("MONOTAKD_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "monotakd_ros"
