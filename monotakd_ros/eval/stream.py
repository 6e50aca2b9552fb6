"""Evaluation of a detector's message stream against ground truth frames matched by stamp.

Ground truth frames (KittiLabels per image stamp) and detection frames arrive in any order. At
the end each detection frame is paired with the ground truth frame nearest in stamp within a
tolerance; the KITTI metrics are computed over the paired frames. Nothing is dropped silently:
ground truth frames without a detection message (frames the detector skipped), detection
messages without ground truth, repeated messages for one stamp and unreadable messages are all
counted in ``StreamCounts``.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.detection_frames import DetectionFrame, OutputFrame, detections_to_labels
from monotakd_ros.eval.kitti_eval import KittiEvalResult, evaluate_kitti

LOGGER = logging.getLogger(__name__)
DEFAULT_CLASSES = ("Car", "Pedestrian", "Cyclist")
EXIT_NOTHING_EVALUATED = 3  # exit status of a run where no frame matched
EXIT_GROUND_TRUTH_LOST = 4  # exit status of a run where sent ground truth never arrived


@dataclass
class StreamCounts:
    """Frame bookkeeping of one evaluation run (every message ends up in exactly one count)."""

    ground_truth_frames: int = 0
    detection_messages: int = 0
    matched_frames: int = 0
    matched_frames_without_detections: int = 0  # the detector answered with an empty array
    ground_truth_frames_without_detection_message: int = 0  # dropped by the detector
    detection_messages_without_ground_truth: int = 0
    duplicate_detection_messages: int = 0  # a second message for an already matched stamp
    ground_truth_messages: int = 0  # ground truth messages received, readable or not
    ground_truth_messages_expected: int = 0  # sent by the replay (0: not known)
    ground_truth_messages_lost: int = 0  # expected but never received
    unreadable_messages: Counter[str] = field(default_factory=Counter)  # reason -> count

    def to_json_dict(self) -> dict[str, object]:
        """Plain-JSON view (the Counter becomes a dict)."""
        values: dict[str, object] = dict(vars(self))
        values["unreadable_messages"] = dict(self.unreadable_messages)
        return values


@dataclass(frozen=True)
class CameraModel:
    """What projecting a box needs: (3, 4) P and the image (height, width)."""

    P: np.ndarray
    image_hw: tuple[int, int]


@dataclass(frozen=True)
class MatchedFrame:
    """A ground truth frame and the detections for the same image."""

    stamp_ns: int
    ground_truth: KittiLabels
    detections: DetectionFrame


@dataclass(frozen=True)
class FrameMatch:
    """Result of stamp matching: pairs, plus the stamps left over on either side."""

    matched: list[MatchedFrame]
    ground_truth_only: list[int]  # stamps of ground truth frames no detection message matched
    detections_only: list[int]  # stamps of detection messages no ground truth frame matched
    duplicates: list[int]  # stamps of extra detection messages for an already matched frame


def match_frames(ground_truth: dict[int, KittiLabels], detections: Sequence[DetectionFrame],
                 tolerance_ns: int) -> FrameMatch:
    """Pair each detection frame with the nearest ground truth stamp within ``tolerance_ns``.

    Detection frames are taken in stamp order; the first one to claim a ground truth frame keeps
    it and later ones for the same frame count as duplicates.
    """
    if tolerance_ns < 0:
        raise EvaluationError(f"stamp tolerance must be >= 0 ns, got {tolerance_ns}")
    gt_stamps = sorted(ground_truth)
    claimed: set[int] = set()
    matched, detections_only, duplicates = [], [], []
    for frame in sorted(detections, key=lambda f: f.stamp_ns):
        position = bisect.bisect_left(gt_stamps, frame.stamp_ns)
        neighbours = gt_stamps[max(position - 1, 0):position + 1]
        nearest = min(neighbours, key=lambda s: abs(s - frame.stamp_ns), default=None)
        if nearest is None or abs(nearest - frame.stamp_ns) > tolerance_ns:
            detections_only.append(frame.stamp_ns)
        elif nearest in claimed:
            duplicates.append(frame.stamp_ns)
        else:
            claimed.add(nearest)
            matched.append(MatchedFrame(nearest, ground_truth[nearest], frame))
    ground_truth_only = [stamp for stamp in gt_stamps if stamp not in claimed]
    return FrameMatch(matched, ground_truth_only, detections_only, duplicates)


class CameraModels:
    """CameraInfo projections by stamp; a frame uses the one nearest in stamp."""

    def __init__(self) -> None:
        self._by_stamp: dict[int, CameraModel] = {}

    def add(self, stamp_ns: int, P: np.ndarray, image_hw: tuple[int, int]) -> None:
        """Remember the camera of one CameraInfo message."""
        self._by_stamp[int(stamp_ns)] = CameraModel(np.asarray(P, dtype=np.float64).reshape(3, 4),
                                                    (int(image_hw[0]), int(image_hw[1])))

    def __len__(self) -> int:
        return len(self._by_stamp)

    def nearest(self, stamp_ns: int) -> CameraModel:
        """The camera whose stamp is nearest ``stamp_ns``."""
        if not self._by_stamp:
            raise EvaluationError("no CameraInfo received: detections need P to get 2D boxes")
        best = min(self._by_stamp, key=lambda stamp: abs(stamp - stamp_ns))
        return self._by_stamp[best]


@dataclass(frozen=True)
class StreamEvaluation:
    """Everything a report shows: the metrics, the counts and the frames behind them."""

    result: KittiEvalResult | None  # None when no frame could be evaluated
    result_with_dropped: KittiEvalResult | None  # dropped frames scored as empty detections
    counts: StreamCounts
    stamps_ns: list[int]  # evaluated frames, in stamp order
    ground_truth: list[KittiLabels]
    detections: list[KittiLabels]
    dropped_stamps_ns: list[int]


def exit_status(evaluation: StreamEvaluation) -> int:
    """0, or 4 when ground truth was lost (scores miss frames), or 3 when nothing was evaluated."""
    if evaluation.counts.ground_truth_messages_lost:
        return EXIT_GROUND_TRUTH_LOST
    return 0 if evaluation.result is not None else EXIT_NOTHING_EVALUATED


class StreamEvaluator:
    """Collects ground truth, detections and cameras as they arrive; ``evaluate`` at the end."""

    def __init__(self, tolerance_s: float = 0.005, classes: Sequence[str] = DEFAULT_CLASSES,
                 output: OutputFrame | None = None, expected_ground_truth: int = 0) -> None:
        if tolerance_s < 0.0:
            raise EvaluationError(f"stamp tolerance must be >= 0 s, got {tolerance_s}")
        if expected_ground_truth < 0:
            raise EvaluationError(f"expected ground truth messages must be >= 0, got "
                                  f"{expected_ground_truth}")
        self.expected_ground_truth = int(expected_ground_truth)
        self.ground_truth_messages = 0
        self.tolerance_ns = int(round(tolerance_s * 1e9))
        self.classes = tuple(classes)
        self.output = output or OutputFrame()
        self.cameras = CameraModels()
        self._ground_truth: dict[int, KittiLabels] = {}
        self._detections: list[DetectionFrame] = []
        self.unreadable: Counter[str] = Counter()

    def add_ground_truth(self, stamp_ns: int, labels: KittiLabels) -> None:
        """One ground truth frame; a repeated stamp replaces the earlier labels."""
        self.ground_truth_messages += 1
        if int(stamp_ns) in self._ground_truth:
            LOGGER.warning("ground truth for stamp %d ns arrived twice; keeping the last",
                           stamp_ns)
        self._ground_truth[int(stamp_ns)] = labels

    def add_detections(self, frame: DetectionFrame) -> None:
        """One detection message."""
        self._detections.append(frame)

    def count_unreadable(self, reason: str) -> None:
        """Record a message that could not be converted (it is reported, not evaluated)."""
        self.unreadable[reason] += 1
        self.ground_truth_messages += int(reason == "ground_truth")

    @property
    def ground_truth_complete(self) -> bool:
        """Whether every ground truth message the replay announced has arrived."""
        return self.ground_truth_messages >= self.expected_ground_truth

    @property
    def num_ground_truth(self) -> int:
        """Ground truth frames received so far."""
        return len(self._ground_truth)

    def all_ground_truth_answered(self) -> bool:
        """Whether every ground truth frame has a detection message (the run may end early)."""
        return bool(self._ground_truth) and not match_frames(
            self._ground_truth, self._detections, self.tolerance_ns).ground_truth_only

    def _labels_of(self, frame: DetectionFrame, unreadable: Counter[str]) -> KittiLabels | None:
        if len(frame) == 0:
            return KittiLabels(score=np.zeros(0))  # nothing to project: no camera needed
        try:
            camera = self.cameras.nearest(frame.stamp_ns)
            return detections_to_labels(frame, camera.P, camera.image_hw, self.output)
        except EvaluationError as err:
            LOGGER.warning("detections stamped %d ns not evaluated: %s", frame.stamp_ns, err)
            unreadable["detections_not_convertible"] += 1
            return None

    def evaluate(self) -> StreamEvaluation:
        """Match by stamp, convert, and run the KITTI evaluation over the matched frames."""
        match = match_frames(self._ground_truth, self._detections, self.tolerance_ns)
        counts = StreamCounts(
            ground_truth_frames=len(self._ground_truth),
            detection_messages=len(self._detections),
            ground_truth_frames_without_detection_message=len(match.ground_truth_only),
            detection_messages_without_ground_truth=len(match.detections_only),
            duplicate_detection_messages=len(match.duplicates),
            unreadable_messages=Counter(self.unreadable),
            ground_truth_messages=self.ground_truth_messages,
            ground_truth_messages_expected=self.expected_ground_truth,
            ground_truth_messages_lost=max(self.expected_ground_truth
                                           - self.ground_truth_messages, 0),
        )
        if counts.ground_truth_messages_lost:
            LOGGER.error("%d of %d ground truth messages sent never arrived",
                         counts.ground_truth_messages_lost, self.expected_ground_truth)
        stamps, gt_frames, dt_frames = [], [], []
        for pair in match.matched:
            labels = self._labels_of(pair.detections, counts.unreadable_messages)
            if labels is None:
                continue
            stamps.append(pair.stamp_ns)
            gt_frames.append(pair.ground_truth)
            dt_frames.append(labels)
            counts.matched_frames += 1
            counts.matched_frames_without_detections += int(len(labels) == 0)
        result = evaluate_kitti(gt_frames, dt_frames, self.classes) if gt_frames else None
        with_dropped = None
        if result is not None and match.ground_truth_only:
            dropped_gt = [self._ground_truth[stamp] for stamp in match.ground_truth_only]
            empty = [KittiLabels(score=np.zeros(0)) for _ in dropped_gt]
            with_dropped = evaluate_kitti(gt_frames + dropped_gt, dt_frames + empty,
                                          self.classes)
        return StreamEvaluation(result, with_dropped, counts, stamps, gt_frames, dt_frames,
                                list(match.ground_truth_only))
