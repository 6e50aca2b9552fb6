"""KITTI label_2 files: one object per line, 15 fields plus an optional score."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monotakd_ros.errors import KittiFormatError


@dataclass
class KittiLabels:
    """All objects of one frame as arrays (N objects).

    ``boxes_cam`` is (N, 7) ``[x, y, z, l, h, w, ry]`` in the rectified camera frame with
    (x, y, z) the bottom centre, exactly as KITTI stores location/dimensions/rotation_y.
    """

    names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U16"))  # (N,) str
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # (N,)
    occluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,)
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # (N,)
    bbox: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))  # (N, 4)
    boxes_cam: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), np.float64))
    score: np.ndarray | None = None  # (N,) for predictions, None for ground truth

    def __len__(self) -> int:
        return int(len(self.names))


# Columns of a label line: name, truncated, occluded, alpha, bbox (4), h w l, x y z, ry [, score].
_GT_FIELDS = 15
_PREDICTION_FIELDS = 16
# File columns of [x, y, z, l, h, w, ry]: the file stores dimensions as h, w, l.
_BOX_COLUMNS = [11, 12, 13, 10, 8, 9, 14]
_STANDARD_PRECISION = 2  # KITTI's own label_2 files carry two decimals
# KITTI's "not given" marker: DontCare regions carry -1 truncation and occlusion (and -1 sizes,
# -1000 m locations), and result files carry -1 truncation and occlusion for every detection.
_NOT_GIVEN = -1.0
_OCCLUSION_LEVELS = (-1.0, 0.0, 1.0, 2.0, 3.0)  # not given, visible, partly, largely, unknown
DONT_CARE = "DontCare"
_MIN_SCORE_PRECISION = 4  # scores need more digits than 0.01 to rank detections


def _parse_line(tokens: list[str], where: str) -> tuple[str, np.ndarray]:
    """(name, (15,) or (16,) float64 row in file order) of one whitespace-split line."""
    if len(tokens) not in (_GT_FIELDS, _PREDICTION_FIELDS):
        raise KittiFormatError(
            f"{where}: expected {_GT_FIELDS} fields (or {_PREDICTION_FIELDS} with a score), "
            f"got {len(tokens)}"
        )
    values = np.empty(len(tokens), dtype=np.float64)
    values[0] = 0.0
    for column, token in enumerate(tokens[1:], start=1):
        try:
            values[column] = float(token)
        except ValueError as err:
            raise KittiFormatError(
                f"{where}: field {column + 1} is not a number: {token!r}"
            ) from err
        if not np.isfinite(values[column]):
            raise KittiFormatError(f"{where}: field {column + 1} is not finite: {token!r}")
    if not values[2].is_integer():
        raise KittiFormatError(f"{where}: occluded (field 3) is not an integer: {tokens[2]!r}")
    _check_label_values(tokens, values, where)
    return tokens[0], values


def _check_label_values(tokens: list[str], values: np.ndarray, where: str) -> None:
    """Raise KittiFormatError naming the field when a value lies outside KITTI's ranges."""
    truncated, occluded = values[1], values[2]
    if truncated != _NOT_GIVEN and not 0.0 <= truncated <= 1.0:
        raise KittiFormatError(f"{where}: truncated (field 2) must lie in [0, 1] (or be -1), "
                               f"got {tokens[1]!r}")
    if occluded not in _OCCLUSION_LEVELS:
        raise KittiFormatError(f"{where}: occluded (field 3) must be 0, 1, 2 or 3 (or -1), "
                               f"got {tokens[2]!r}")
    x1, y1, x2, y2 = values[4:8]
    if x2 < x1 or y2 < y1:
        raise KittiFormatError(f"{where}: bbox (fields 5-8) needs x1 <= x2 and y1 <= y2, got "
                               f"{' '.join(tokens[4:8])}")
    dims = values[8:11]  # h, w, l
    dont_care_filler = tokens[0] == DONT_CARE and bool(np.all(dims == _NOT_GIVEN))
    if not dont_care_filler and np.any(dims < 0.0):
        raise KittiFormatError(f"{where}: dimensions h w l (fields 9-11) must be >= 0 (only "
                               f"DontCare may give -1 -1 -1), got {' '.join(tokens[8:11])}")


def labels_from_lines(lines: Iterable[str], source: str | Path = "<lines>") -> KittiLabels:
    """Labels from label_2 text lines (blank lines skipped); ``source`` names them in errors."""
    names: list[str] = []
    rows: list[np.ndarray] = []
    for line_no, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{source}:{line_no}"
        name, row = _parse_line(tokens, where)
        if rows and len(row) != len(rows[0]):
            raise KittiFormatError(
                f"{where}: {len(row)} fields, but earlier lines have {len(rows[0])} "
                "(a file either has a score column on every line or on none)"
            )
        names.append(name)
        rows.append(row)
    if not rows:
        return KittiLabels()
    table = np.stack(rows)  # (N, 15) or (N, 16)
    return KittiLabels(
        names=np.array(names, dtype=np.str_),
        truncated=table[:, 1].copy(),
        occluded=table[:, 2].astype(np.int64),
        alpha=table[:, 3].copy(),
        bbox=table[:, 4:8].copy(),
        boxes_cam=table[:, _BOX_COLUMNS],
        score=table[:, 15].copy() if table.shape[1] == _PREDICTION_FIELDS else None,
    )


def read_label_file(path: Path) -> KittiLabels:
    """Parse one label_2 (15 fields) or prediction (16 fields) file; empty means no objects."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise KittiFormatError(f"{path}: cannot read label file ({err})") from err
    return labels_from_lines(text.splitlines(), path)


def _check_consistent(labels: KittiLabels, where: str) -> None:
    """Raise when the arrays of ``labels`` disagree in shape or hold non-finite values."""
    n = len(labels)
    expected = {
        "truncated": (n,),
        "occluded": (n,),
        "alpha": (n,),
        "bbox": (n, 4),
        "boxes_cam": (n, 7),
    }
    if labels.score is not None:
        expected["score"] = (n,)
    for name, shape in expected.items():
        value = np.asarray(getattr(labels, name))
        if value.shape != shape:
            raise KittiFormatError(f"{where}: labels.{name} has shape {value.shape}, want {shape}")
        if not np.all(np.isfinite(value)):
            raise KittiFormatError(f"{where}: labels.{name} holds non-finite values")
    for name in labels.names:
        if not name or any(ch.isspace() for ch in str(name)):
            raise KittiFormatError(f"{where}: class name {str(name)!r} is empty or has spaces")


def _number(value: float, precision: int | None) -> str:
    """``value`` with ``precision`` decimals, or the shortest exact text when precision is None."""
    return repr(float(value)) if precision is None else f"{value:.{precision}f}"


def labels_to_lines(
    labels: KittiLabels, precision: int | None = _STANDARD_PRECISION, where: str = "<labels>"
) -> list[str]:
    """label_2 text lines; ``precision=None`` writes every float exactly (lossless)."""
    _check_consistent(labels, where)
    score_precision = None if precision is None else max(precision, _MIN_SCORE_PRECISION)
    lines = []
    for i in range(len(labels)):
        x_m, y_m, z_m, length_m, height_m, width_m, ry_rad = labels.boxes_cam[i]
        floats = [
            labels.alpha[i],
            *labels.bbox[i],
            height_m,
            width_m,
            length_m,
            x_m,
            y_m,
            z_m,
            ry_rad,
        ]
        fields = [
            str(labels.names[i]),
            _number(labels.truncated[i], precision),
            str(int(labels.occluded[i])),
            *(_number(v, precision) for v in floats),
        ]
        if labels.score is not None:
            fields.append(_number(labels.score[i], score_precision))
        lines.append(" ".join(fields))
    return lines


def write_label_file(
    path: Path, labels: KittiLabels, precision: int | None = _STANDARD_PRECISION
) -> None:
    """Write a label_2 file (score column iff ``labels.score`` is set), creating the folder.

    ``precision`` is the number of decimals (KITTI uses 2; scores get at least 4); None writes
    the shortest text that reads back as the same float, for lossless round trips.
    """
    path = Path(path)
    lines = labels_to_lines(labels, precision, where=str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))
    except OSError as err:
        raise KittiFormatError(f"{path}: cannot write label file ({err})") from err


def select_labels(labels: KittiLabels, keep: np.ndarray) -> KittiLabels:
    """The objects picked by ``keep`` (boolean mask or integer indices), in that order."""
    keep = np.asarray(keep)
    return KittiLabels(
        names=labels.names[keep],
        truncated=labels.truncated[keep],
        occluded=labels.occluded[keep],
        alpha=labels.alpha[keep],
        bbox=labels.bbox[keep],
        boxes_cam=labels.boxes_cam[keep],
        score=None if labels.score is None else labels.score[keep],
    )


select = select_labels  # short name used by callers that filter labels


def concat_labels(parts: Sequence[KittiLabels]) -> KittiLabels:
    """All objects of ``parts`` in order; scores are kept when every non-empty part has them."""
    non_empty = [part for part in parts if len(part)]
    if not non_empty:
        return KittiLabels()
    with_score = [part.score is not None for part in non_empty]
    if any(with_score) and not all(with_score):
        raise ValueError("cannot concatenate labels with and without scores")
    return KittiLabels(
        names=np.concatenate([part.names for part in non_empty]),
        truncated=np.concatenate([part.truncated for part in non_empty]),
        occluded=np.concatenate([part.occluded for part in non_empty]),
        alpha=np.concatenate([part.alpha for part in non_empty]),
        bbox=np.concatenate([part.bbox for part in non_empty]),
        boxes_cam=np.concatenate([part.boxes_cam for part in non_empty]),
        score=np.concatenate([part.score for part in non_empty]) if all(with_score) else None,
    )
