"""One image and its projection matrix in, 3D boxes in the KITTI camera frame out.

The image is mapped onto the camera the student was trained with (``virtual_camera``: resample
to the training focal length, place the principal point, crop/pad; for KITTI-shaped images this is
exactly training's ``data.batch.prepare_image``), the student runs
under ``torch.inference_mode``, and its LiDAR-frame boxes are mapped back to the camera frame
through the same nominal ``T_rect_from_lidar`` the model used to lift the image.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monotakd_ros.data.batch import placed_image, placed_projection, prepare_image, resized_hw
from monotakd_ros.errors import CalibrationError, CheckpointError, ConfigError, ImageEncodingError
from monotakd_ros.geometry.calib import CameraCalib
from monotakd_ros.geometry.coord_frames import boxes_lidar_to_cam
from monotakd_ros.inference.device import fp16_enabled, select_device
from monotakd_ros.inference.device_prepare import DeviceImagePreparer
from monotakd_ros.inference.fast_paths import Network, NetworkRunner, build_network_runner
from monotakd_ros.inference.virtual_camera import (
    CameraMapping,
    VirtualCamera,
    kitti_training_camera,
)
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta, load_model_weights
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.models.build import build_student
from monotakd_ros.models.camera_detector import CameraBevDetector
from monotakd_ros.models.config import ModelConfig, PostprocessConfig, saved_model_config
from monotakd_ros.models.postprocess import detections_from_head

logger = logging.getLogger(__name__)

STUDENT_STAGE = "student"
CAMERA_MODES = ("virtual", "fit_width")  # fit_width: training's step, for KITTI-shaped images


@dataclass(frozen=True)
class PredictorTiming:
    """Where one ``predict`` call spent its time, in milliseconds."""

    prepare_ms: float  # validation, resize/normalise, copy to the device
    network_ms: float  # the student's forward pass
    decode_ms: float  # thresholds, NMS and the LiDAR -> camera mapping


@dataclass(frozen=True)
class CameraDetections:
    """Detections of one image in the KITTI rectified camera frame."""

    boxes_cam: np.ndarray  # (K, 7) float64 [x, y, z, l, h, w, ry], (x, y, z) = bottom centre
    scores: np.ndarray  # (K,) float64, descending
    class_names: tuple[str, ...]  # (K,) the checkpoint's class name of each box
    timing: PredictorTiming

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def postprocess_settings(base: PostprocessConfig, score_threshold: float | None,
                         nms_iou: float | None,
                         max_detections: int | None) -> PostprocessConfig:
    """The checkpoint's post-processing with the given overrides (None keeps its value)."""
    changes: dict[str, float | int] = {}
    if score_threshold is not None:
        if not 0.0 <= score_threshold < 1.0:
            raise ConfigError(f"score_threshold: must be in [0, 1), got {score_threshold}")
        changes["score_threshold"] = float(score_threshold)
    if nms_iou is not None:
        if not 0.0 < nms_iou <= 1.0:
            raise ConfigError(f"nms_iou: must be in (0, 1], got {nms_iou}")
        changes["nms_iou_threshold"] = float(nms_iou)
    if max_detections is not None:
        if max_detections < 1:
            raise ConfigError(f"max_detections: must be >= 1, got {max_detections}")
        changes["max_detections"] = int(max_detections)
    return dataclasses.replace(base, **changes)


def validated_projection(P: np.ndarray) -> np.ndarray:
    """P as a (3, 4) float64 array, or CalibrationError saying what is wrong with it."""
    P = np.asarray(P, dtype=np.float64)
    if P.shape != (3, 4):
        raise CalibrationError(f"P must have shape (3, 4), got {P.shape}")
    if not np.all(np.isfinite(P)):
        raise CalibrationError(f"P holds non-finite values: {P.tolist()}")
    if not np.any(P):
        raise CalibrationError("P is all zeros (an uncalibrated camera?)")
    if P[0, 0] == 0.0 or P[1, 1] == 0.0 or P[2, 2] == 0.0:
        raise CalibrationError(f"P has a zero focal length or P[2, 2] = 0: {P.tolist()}")
    return P


def validated_image(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR image; float images must be finite and are rounded to uint8."""
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or min(image_bgr.shape[:2]) < 1:
        raise ImageEncodingError(f"image must be (H, W, 3) BGR, got shape {image_bgr.shape}")
    if image_bgr.dtype == np.uint8:
        return image_bgr
    if not np.issubdtype(image_bgr.dtype, np.floating):
        raise ImageEncodingError(f"image must be uint8 (or float 0-255), got {image_bgr.dtype}")
    bad = ~np.isfinite(image_bgr)
    if np.any(bad):
        rows, cols = np.nonzero(bad.any(axis=2))
        raise ImageEncodingError(f"image has {int(bad.sum())} NaN/inf pixel values (first at "
                                 f"row {int(rows[0])}, column {int(cols[0])})")
    return np.clip(np.rint(image_bgr), 0, 255).astype(np.uint8)


class StudentPredictor:
    """A loaded student checkpoint: ``predict(image_bgr, P)`` -> :class:`CameraDetections`."""

    def __init__(self, model: CameraBevDetector, model_cfg: ModelConfig, spec: InputSpec,
                 device: torch.device, fp16: bool, postprocess: PostprocessConfig,
                 camera_mode: str = "virtual", placement: str = "principal_point",
                 horizon_row_px: float | None = None, network_path: str = "eager") -> None:
        if camera_mode not in CAMERA_MODES:
            raise ConfigError(f"camera_mode: must be one of {list(CAMERA_MODES)}, got "
                              f"{camera_mode!r}")
        self._model: CameraBevDetector | None = model.eval().to(device)
        self.model_cfg = model_cfg
        self.spec = spec
        self.device = device
        self.fp16 = fp16
        self.postprocess = postprocess
        self.camera_mode = camera_mode
        self.virtual_camera = VirtualCamera(kitti_training_camera(spec), placement,
                                            horizon_row_px)
        self._mappings: dict[tuple[bytes, tuple[int, int]], CameraMapping] = {}
        self._T_rect_from_lidar = np.asarray(model_cfg.nominal_T_rect_from_lidar, np.float64)
        # Fast paths (fast_paths.py) warm up here, so the first frame is not slow.
        self._network: Network | None = build_network_runner(
            self._model, device, network_path, fp16, tuple(spec.input_hw))
        self._device_preparer = (DeviceImagePreparer(spec, device) if device.type == "cuda"
                                 else None)
        if self._device_preparer is not None:
            self.warm_up_device()

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str = "auto", fp16: bool = False,
                        score_threshold: float | None = None, nms_iou: float | None = None,
                        max_detections: int | None = None, camera_mode: str = "virtual",
                        placement: str = "principal_point",
                        horizon_row_px: float | None = None,
                        network_path: str = "auto") -> StudentPredictor:
        """Load and validate a student checkpoint; CheckpointError names the path and problem."""
        path = Path(path).expanduser()
        if not path.exists():
            raise CheckpointError(f"{path}: model checkpoint not found (no such file or "
                                  "directory)")
        meta = load_checkpoint_meta(path)
        if meta.stage != STUDENT_STAGE:
            raise CheckpointError(f"{path}: is a '{meta.stage}' checkpoint; the detector needs "
                                  f"a '{STUDENT_STAGE}' checkpoint")
        model_cfg = saved_model_config(meta, path)
        if tuple(meta.class_names) != model_cfg.head.class_names:
            raise CheckpointError(f"{path}: input_spec.class_names {list(meta.class_names)} "
                                  f"differ from the head's {list(model_cfg.head.class_names)}")
        if tuple(meta.input_spec.input_hw) != tuple(model_cfg.image.input_hw):
            raise CheckpointError(f"{path}: input_spec.input_hw {meta.input_spec.input_hw} "
                                  f"differs from model_config.image.input_hw "
                                  f"{model_cfg.image.input_hw}")
        # The weights come from the checkpoint: never read the trunk's ImageNet file again.
        model_cfg = dataclasses.replace(
            model_cfg, trunk=dataclasses.replace(model_cfg.trunk, pretrained_path=None))
        settings = postprocess_settings(model_cfg.postprocess, score_threshold, nms_iou,
                                        max_detections)
        torch_device = select_device(device)
        model = build_student(model_cfg)
        load_model_weights(path, model, strict=True)
        logger.info("loaded student %s (%s) on %s", path, meta.code_version, torch_device)
        return cls(model, model_cfg, meta.input_spec, torch_device,
                   fp16_enabled(torch_device, fp16), settings, camera_mode, placement,
                   horizon_row_px, network_path)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The checkpoint's class names in head order."""
        return self.spec.class_names

    @property
    def num_parameters(self) -> int:
        """Number of model parameters."""
        return sum(p.numel() for p in self._loaded_model().parameters())

    def predict(self, image_bgr: np.ndarray, P: np.ndarray) -> CameraDetections:
        """Camera-frame detections in ``image_bgr`` (H, W, 3) whose projection is P (3, 4)."""
        model = self._loaded_model()
        start = time.perf_counter()
        P = validated_projection(P)
        image_bgr = validated_image(image_bgr)
        if self._device_preparer is not None:  # CUDA: resize, pad, normalise on the device
            images, P_input = self.prepared_input_on_device(image_bgr, P)
        else:
            image, P_input = self.prepared_input(image_bgr, P)
            images = image[None].to(self.device, non_blocking=True)  # (1, 3, H, W)
        P2 = torch.as_tensor(P_input, dtype=torch.float32)[None].to(self.device)  # (1, 3, 4)
        prepared = time.perf_counter()
        head = self._loaded_network()(images, P2)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ran = time.perf_counter()
        with torch.inference_mode():
            detections = detections_from_head(head, model.head.anchors,
                                              self.model_cfg.head, self.postprocess)[0]
        boxes_lidar = detections.boxes_lidar.double().cpu().numpy()  # (K, 7)
        scores = detections.scores.double().cpu().numpy()
        classes = detections.classes.cpu().numpy()
        calib = CameraCalib(P2=P, R0_rect=np.eye(3), T_cam_from_lidar=self._T_rect_from_lidar[:3])
        boxes_cam = boxes_lidar_to_cam(boxes_lidar, calib)
        names = tuple(self.spec.class_names[int(c)] for c in classes)
        done = time.perf_counter()
        timing = PredictorTiming(prepare_ms=(prepared - start) * 1e3,
                                 network_ms=(ran - prepared) * 1e3, decode_ms=(done - ran) * 1e3)
        return CameraDetections(boxes_cam=boxes_cam, scores=scores, class_names=names,
                                timing=timing)

    def camera_mapping(self, P: np.ndarray, image_hw: tuple[int, int]) -> CameraMapping:
        """The virtual camera's mapping of this camera (cached; logged once when new)."""
        key = (np.asarray(P, dtype=np.float64).tobytes(), (int(image_hw[0]), int(image_hw[1])))
        mapping = self._mappings.get(key)
        if mapping is None:
            if len(self._mappings) >= 8:  # a camera whose P changes every frame
                self._mappings.clear()
            mapping = self.virtual_camera.mapping(P, image_hw)
            self._mappings[key] = mapping
            logger.info("%s", mapping.summary())
            for warning in mapping.warnings():
                logger.warning("%s", warning)
        return mapping

    def prepared_input(self, image_bgr: np.ndarray,
                       P: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """(3, H, W) normalised network input and P at the input, per ``camera_mode``."""
        if self.camera_mode == "fit_width":
            image, P_input, _ = prepare_image(image_bgr, P, self.spec)
            return image, P_input
        mapping = self.camera_mapping(P, image_bgr.shape[:2])
        image = placed_image(image_bgr, mapping.resized_hw, mapping.offset_yx, self.spec)
        return image, mapping.P_input

    def prepared_input_on_device(self, image_bgr: np.ndarray,
                                 P: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """``prepared_input`` computed on the device: (1, 3, H, W) there, and P at the input."""
        if self._device_preparer is None:
            raise RuntimeError(f"no device-side preparation on {self.device}")
        original_hw = (int(image_bgr.shape[0]), int(image_bgr.shape[1]))
        if self.camera_mode == "fit_width":
            new_hw, offset_yx = resized_hw(original_hw, self.spec), (0, 0)
            P_input = placed_projection(P, original_hw, new_hw, offset_yx)
        else:
            mapping = self.camera_mapping(P, original_hw)
            new_hw, offset_yx, P_input = mapping.resized_hw, mapping.offset_yx, mapping.P_input
        return self._device_preparer.prepare(image_bgr, new_hw, offset_yx), P_input

    def warm_up_device(self) -> None:
        """One blank frame through device prepare, network and decode: first-call costs now."""
        if self._device_preparer is None:
            raise RuntimeError(f"no device-side preparation on {self.device}")
        height, width = self.spec.input_hw
        blank = np.zeros((height + 2, width + 2, 3), np.uint8)  # a real resize, not a copy
        images = self._device_preparer.prepare(blank, (height, width), (0, 0))
        P2 = torch.as_tensor(self.virtual_camera.target.P_input, dtype=torch.float32)
        head = self._loaded_network()(images, P2[None].to(self.device))
        with torch.inference_mode():
            detections_from_head(head, self._loaded_model().head.anchors, self.model_cfg.head,
                                 self.postprocess)

    @property
    def model(self) -> CameraBevDetector:
        """The loaded student network (eval mode, on ``device``)."""
        return self._loaded_model()

    @property
    def network_path(self) -> str:
        """The fast path the network call uses (``custom`` after ``set_network``)."""
        runner = self._network
        return runner.path.name if isinstance(runner, NetworkRunner) else "custom"

    def set_network(self, network: Network) -> None:
        """Replace the network call (e.g. an ONNX runtime session); decode stays the same."""
        self._network = network

    def release(self) -> None:
        """Drop the model and return its GPU memory; ``predict`` is unusable afterwards."""
        self._model = None
        self._network = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _loaded_model(self) -> CameraBevDetector:
        if self._model is None:
            raise RuntimeError("StudentPredictor was released; load the checkpoint again")
        return self._model

    def _loaded_network(self) -> Network:
        if self._network is None:
            raise RuntimeError("StudentPredictor was released; load the checkpoint again")
        return self._network
