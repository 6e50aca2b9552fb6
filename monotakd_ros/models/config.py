"""Model configuration: frozen dataclasses loaded strictly from YAML.

BEV tensor layout, shared by the teacher, the TA and the student: ``(B, C, H=ny, W=nx)``.
Row ``j`` holds LiDAR ``y = y_min + (j + 0.5) * cell_m`` and column ``i`` holds
``x = x_min + (i + 0.5) * cell_m`` (x forward, y left, z up). Voxel grids are
``(B, C, Z=height_slices, Y=ny, X=nx)`` with slice ``k`` at ``z = z_min + (k + 0.5) * slice_m``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monotakd_ros.configuration import (
    bounded,
    check_fields,
    dataclass_from_dict,
    errors_naming,
    load_yaml_mapping,
)
from monotakd_ros.errors import CheckpointError, ConfigError
from monotakd_ros.model_io.checkpoint import CheckpointMeta

# Real KITTI calibration (object training/calib/000000.txt, 2011_09_26 drives).
_KITTI_R0_RECT = (
    (9.999239e-01, 9.837760e-03, -7.445048e-03),
    (-9.869795e-03, 9.999421e-01, -4.278459e-03),
    (7.402527e-03, 4.351614e-03, 9.999631e-01),
)
_KITTI_TR_VELO_TO_CAM = (
    (7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03),
    (1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02),
    (9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01),
)

Matrix4 = tuple[
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
    tuple[float, float, float, float],
]


def kitti_T_rect_from_lidar() -> Matrix4:
    """R0_rect · Tr_velo_to_cam of the reference KITTI calibration, as a 4x4 nested tuple."""
    rows = []
    for r in range(3):
        row = [sum(_KITTI_R0_RECT[r][k] * _KITTI_TR_VELO_TO_CAM[k][c] for k in range(3))
               for c in range(4)]
        rows.append(tuple(row))
    rows.append((0.0, 0.0, 0.0, 1.0))
    return tuple(rows)  # type: ignore[return-value]


def _cells(lo: float, hi: float, step: float, key: str) -> int:
    """Number of cells of ``step`` metres in [lo, hi]; the range must be a whole multiple."""
    if hi <= lo or step <= 0:
        raise ConfigError(f"{key}: need lo < hi and a positive step, got ({lo}, {hi}) / {step}")
    count = (hi - lo) / step
    if abs(count - round(count)) > 1e-4:
        raise ConfigError(f"{key}: range ({lo}, {hi}) is not a whole number of {step} m cells")
    return int(round(count))


@dataclass(frozen=True)
class BevGridConfig:
    """LiDAR-frame grid shared by every BEV map (teacher, TA, student)."""

    x_range_m: tuple[float, float] = (2.0, 46.8)
    y_range_m: tuple[float, float] = (-30.08, 30.08)
    z_range_m: tuple[float, float] = (-3.0, 1.0)
    cell_m: float = bounded(0.32, gt=0)
    height_slices: int = bounded(10, gt=0)

    def __post_init__(self) -> None:
        check_fields(self, "grid")
        _cells(*self.x_range_m, self.cell_m, "grid.x_range_m")
        _cells(*self.y_range_m, self.cell_m, "grid.y_range_m")
        if self.height_slices < 1 or self.z_range_m[1] <= self.z_range_m[0]:
            raise ConfigError(f"grid: need height_slices >= 1 and a rising z_range_m, got "
                              f"{self.height_slices} / {self.z_range_m}")

    @property
    def nx(self) -> int:
        """Cells along LiDAR x (forward): the BEV width W."""
        return _cells(*self.x_range_m, self.cell_m, "grid.x_range_m")

    @property
    def ny(self) -> int:
        """Cells along LiDAR y (left): the BEV height H."""
        return _cells(*self.y_range_m, self.cell_m, "grid.y_range_m")

    @property
    def slice_m(self) -> float:
        """Height of one voxel slice in metres."""
        return (self.z_range_m[1] - self.z_range_m[0]) / self.height_slices


@dataclass(frozen=True)
class ImageConfig:
    """Network input: RGB in [0, 1], resized to ``input_hw`` and normalised by mean/std."""

    # KITTI's 375 x 1242 resized to width 1248, bottom-padded to 384: multiples of 32.
    input_hw: tuple[int, int] = bounded((384, 1248), ge=32, multiple_of=32)
    mean: tuple[float, float, float] = bounded((0.485, 0.456, 0.406), ge=0, le=1)
    std: tuple[float, float, float] = bounded((0.229, 0.224, 0.225), gt=0)

    def __post_init__(self) -> None:
        check_fields(self, "image")


@dataclass(frozen=True)
class TrunkConfig:
    """Image trunk to stride 8; ``pretrained_path`` optionally loads user weights."""

    name: Literal["resnet50", "resnet18", "small"] = "resnet50"
    out_stride: int = 8
    pretrained_path: Path | None = None
    small_channels: tuple[int, int, int] = bounded((24, 48, 96), gt=0)  # name == "small" only

    def __post_init__(self) -> None:
        check_fields(self, "trunk")
        if self.out_stride != 8:
            raise ConfigError(f"trunk.out_stride: only 8 is supported, got {self.out_stride}")


@dataclass(frozen=True)
class DepthBinsConfig:
    """Linear-increasing (LID) depth bins over [min_m, max_m] plus one out-of-range bin."""

    num_bins: int = bounded(120, ge=2)
    min_m: float = bounded(2.0, gt=0)
    max_m: float = 46.8
    # How a stride x stride block of sparse LiDAR depths becomes the one depth of its feature
    # cell (the TA's one-hot depth and the student's depth target). "mean" of the valid depths
    # (first release; close to upstream's local mean of a dense map); "nearest": the smallest,
    # so a block that a thin foreground object only partly covers takes the object's depth
    # instead of a depth between it and the background (docs/method.md, "LiDAR depth per
    # feature cell").
    lidar_pooling: Literal["mean", "nearest"] = "mean"

    def __post_init__(self) -> None:
        check_fields(self, "depth")
        if self.num_bins < 2 or not 0.0 < self.min_m < self.max_m:
            raise ConfigError(f"depth: need num_bins >= 2 and 0 < min_m < max_m, got "
                              f"{self.num_bins} / ({self.min_m}, {self.max_m})")


@dataclass(frozen=True)
class DepthHeadConfig:
    """ASPP depth head on the trunk's deepest features."""

    aspp_channels: int = bounded(256, gt=0)
    aspp_rates: tuple[int, ...] = bounded((12, 24, 36), gt=0)

    def __post_init__(self) -> None:
        check_fields(self, "depth_head")


@dataclass(frozen=True)
class SpatialCueConfig:
    """Spatial-cue branch (F_S_spa): ASPP + squeeze-excitation, optionally upstream's SAM."""

    aspp_rates: tuple[int, ...] = bounded((2, 4, 6), gt=0)
    se_reduction: int = bounded(8, gt=0)
    # "aspp_se": SE(ASPP(x)) (first release, the default so old checkpoints still build);
    # "sam": x·SE(ASPP(x)) + DCN(DCN(x)), then out_convs 3x3 convs (models/spatial_alignment.py)
    alignment: Literal["aspp_se", "sam"] = "aspp_se"
    deformable_convs: int = bounded(2, ge=0)  # "sam" only
    out_convs: int = bounded(2, ge=0)  # "sam" only

    def __post_init__(self) -> None:
        check_fields(self, "spatial_cue")


@dataclass(frozen=True)
class ScnetConfig:
    """SCNet refinement of F_S (self-calibrated bottlenecks); 0 blocks = none (first release)."""

    blocks: int = bounded(0, ge=0)
    reduction: int = bounded(4, gt=0)  # bottleneck width = bev_channels / reduction
    pooling: int = bounded(4, gt=0)  # down-sampling of the self-calibration context

    def __post_init__(self) -> None:
        check_fields(self, "scnet")

    def bottleneck_width(self, bev_channels: int) -> int:
        """Width of each block's bottleneck; it is split in two equal halves."""
        width = bev_channels // self.reduction
        if width < 2 or width % 2:
            raise ConfigError(f"scnet.reduction: bev_channels {bev_channels} // reduction "
                              f"{self.reduction} must be an even width >= 2, got {width}")
        return width


@dataclass(frozen=True)
class BevBackboneConfig:
    """SECOND-style 2D backbone: strided blocks, upsampled and concatenated."""

    layer_nums: tuple[int, ...] = bounded((5, 5), ge=0)  # 3x3 convs after each block's first
    layer_strides: tuple[int, ...] = bounded((1, 2), gt=0)
    num_filters: tuple[int, ...] = bounded((128, 256), gt=0)
    upsample_strides: tuple[int, ...] = bounded((1, 2), gt=0)
    upsample_filters: tuple[int, ...] = bounded((256, 256), gt=0)

    def __post_init__(self) -> None:
        check_fields(self, "bev_backbone")
        lengths = {len(self.layer_nums), len(self.layer_strides), len(self.num_filters),
                   len(self.upsample_strides), len(self.upsample_filters)}
        if len(lengths) != 1 or not self.layer_nums:
            raise ConfigError(f"bev_backbone: need at least one block and lists of one length, "
                              f"got {self}")
        scale = 1
        for stride, up in zip(self.layer_strides, self.upsample_strides, strict=True):
            scale *= stride
            if up != scale:
                raise ConfigError(f"bev_backbone.upsample_strides: must undo the cumulative "
                                  f"stride {scale} of each block, got {up}")


@dataclass(frozen=True)
class TeacherConfig:
    """LiDAR teacher encoder: one pillar per BEV cell, or a height-resolved voxel stack."""

    pfn_channels: int = bounded(64, gt=0)
    stem_convs: int = bounded(2, gt=0)  # 3x3 convs between the scattered pillars and F_T
    # "pillar": one pillar per BEV cell, no height resolution (first release; default so that
    # old teacher checkpoints still build). "voxel": models/voxel_encoder.py, the fields below.
    encoder: Literal["pillar", "voxel"] = "pillar"
    voxel_subdivision: int = bounded(2, gt=0)  # voxels per BEV cell side (0.32 m -> 0.16 m)
    voxel_height_m: float = bounded(0.2, gt=0)  # vertical voxel size; must divide z_range_m
    voxel_channels: int = bounded(16, gt=0)  # per-voxel feature width before the collapse
    vertical_convs: int = bounded(0, ge=0)  # 3x3x3 conv-bn-relu layers before the collapse

    def __post_init__(self) -> None:
        check_fields(self, "teacher")

    def voxel_slices(self, grid: BevGridConfig) -> int:
        """Height slices of the voxel encoder over ``grid.z_range_m``."""
        return _cells(*grid.z_range_m, self.voxel_height_m, "teacher.voxel_height_m")


@dataclass(frozen=True)
class AnchorClassConfig:
    """Anchor size and matching thresholds of one class."""

    class_name: str
    size_lwh_m: tuple[float, float, float] = bounded(gt=0)
    bottom_z_m: float = bounded()
    match_iou: float = bounded(ge=0, le=1)
    unmatch_iou: float = bounded(ge=0, le=1)

    def __post_init__(self) -> None:
        check_fields(self, f"head.anchors[{self.class_name}]")
        if not 0.0 <= self.unmatch_iou <= self.match_iou <= 1.0:
            raise ConfigError(f"head.anchors[{self.class_name}]: need 0 <= unmatch_iou <= "
                              f"match_iou <= 1, got {self.unmatch_iou} / {self.match_iou}")


def _kitti_anchors() -> tuple[AnchorClassConfig, ...]:
    return (
        AnchorClassConfig("Car", (3.9, 1.6, 1.56), -1.78, 0.6, 0.45),
        AnchorClassConfig("Pedestrian", (0.8, 0.6, 1.73), -0.6, 0.5, 0.35),
        AnchorClassConfig("Cyclist", (1.76, 0.6, 1.73), -0.6, 0.5, 0.35),
    )


@dataclass(frozen=True)
class HeadConfig:
    """Anchor head: one anchor per class and rotation at every BEV cell."""

    anchors: tuple[AnchorClassConfig, ...] = field(default_factory=_kitti_anchors)
    rotations_rad: tuple[float, ...] = bounded((0.0, math.pi / 2))  # any finite angle
    dir_offset_rad: float = bounded(math.pi / 4)
    num_dir_bins: int = 2

    def __post_init__(self) -> None:
        check_fields(self, "head")
        if not self.anchors or not self.rotations_rad:
            raise ConfigError("head: needs at least one anchor class and one rotation")
        if self.num_dir_bins != 2:
            raise ConfigError(f"head.num_dir_bins: only 2 is supported, got {self.num_dir_bins}")

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in label order (label c ↔ ``anchors[c]``)."""
        return tuple(a.class_name for a in self.anchors)

    @property
    def anchors_per_cell(self) -> int:
        """Anchors at one BEV cell: classes × rotations."""
        return len(self.anchors) * len(self.rotations_rad)


@dataclass(frozen=True)
class PostprocessConfig:
    """Score threshold and per-class rotated NMS."""

    score_threshold: float = bounded(0.1, ge=0, lt=1)
    nms_iou_threshold: float = bounded(0.1, gt=0, le=1)
    pre_nms_max: int = bounded(1000, gt=0)
    max_detections: int = bounded(100, gt=0)

    def __post_init__(self) -> None:
        check_fields(self, "postprocess")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the teacher, TA and student architectures."""

    grid: BevGridConfig = field(default_factory=BevGridConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    depth: DepthBinsConfig = field(default_factory=DepthBinsConfig)
    depth_head: DepthHeadConfig = field(default_factory=DepthHeadConfig)
    image_channels: int = bounded(64, gt=0)
    bev_channels: int = bounded(128, gt=0)
    scnet: ScnetConfig = field(default_factory=ScnetConfig)
    spatial_cue: SpatialCueConfig = field(default_factory=SpatialCueConfig)
    fusion_convs: int = bounded(2, ge=0)  # "stack" fusion only
    # "stack": fusion_convs 3x3 convs (first release); "ffm": conv3x3 -> conv1x1 -> conv3x3
    fusion_style: Literal["stack", "ffm"] = "stack"
    bev_backbone: BevBackboneConfig = field(default_factory=BevBackboneConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # Used when a frame has only P2 (inference): the LiDAR grid is placed in the camera frame
    # with this extrinsic. Default: the reference KITTI calibration above.
    nominal_T_rect_from_lidar: Matrix4 = field(default_factory=kitti_T_rect_from_lidar)

    def __post_init__(self) -> None:
        check_fields(self, "model")
        if self.teacher.encoder == "voxel":
            self.teacher.voxel_slices(self.grid)  # the z range must be whole voxel slices
        if self.scnet.blocks > 0:
            self.scnet.bottleneck_width(self.bev_channels)
        last_row = self.nominal_T_rect_from_lidar[3]
        if tuple(float(v) for v in last_row) != (0.0, 0.0, 0.0, 1.0):
            raise ConfigError(f"model.nominal_T_rect_from_lidar: last row must be [0, 0, 0, 1], "
                              f"got {list(last_row)}")


def load_model_config(path: Path) -> ModelConfig:
    """Read a model YAML (top level or under ``model:``); relative paths follow the file."""
    path = Path(path)
    data = load_yaml_mapping(path)
    if set(data) == {"model"}:
        data = data["model"]
    with errors_naming(path):
        cfg = dataclass_from_dict(ModelConfig, data, where=f"{path}:model")
    pretrained = cfg.trunk.pretrained_path
    if pretrained is not None and not pretrained.is_absolute():
        resolved = (path.parent / pretrained).resolve()
        trunk = dataclasses.replace(cfg.trunk, pretrained_path=resolved)
        cfg = dataclasses.replace(cfg, trunk=trunk)
    return cfg


def saved_model_config(meta: CheckpointMeta, path: Path) -> ModelConfig:
    """A checkpoint's model config; keys it predates take their (first-release) defaults."""
    try:
        return dataclass_from_dict(ModelConfig, meta.model_config, where=f"{path}:model_config")
    except ConfigError as err:
        raise CheckpointError(f"{path}: model_config does not fit this code: {err}") from err
