"""The report of a stream evaluation: report.json, report.md and the figures next to them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.kitti_eval import KittiEvalResult
from monotakd_ros.eval.plots import busiest_frame, plot_bev, plot_pr_curves
from monotakd_ros.eval.stream import StreamCounts, StreamEvaluation

LOGGER = logging.getLogger(__name__)
JSON_NAME = "report.json"
MARKDOWN_NAME = "report.md"
PR_CURVES_NAME = "pr_curves.png"
BEV_NAME = "bev.png"
TABLE_NAME = "ap_table.txt"
_METRIC_NAMES = {"3d": "3D", "bev": "BEV", "bbox": "2D", "aos": "AOS"}
_COUNT_TEXT = {
    "ground_truth_frames": "ground truth frames received",
    "detection_messages": "detection messages received",
    "matched_frames": "frames evaluated (matched by stamp)",
    "matched_frames_without_detections": "evaluated frames with an empty detection array",
    "ground_truth_frames_without_detection_message":
        "ground truth frames with no detection message (dropped by the detector)",
    "detection_messages_without_ground_truth": "detection messages with no ground truth frame",
    "duplicate_detection_messages": "extra detection messages for an already matched frame",
    "ground_truth_messages": "ground truth messages received",
    "ground_truth_messages_expected": "ground truth messages in the bag (0: not known)",
    "ground_truth_messages_lost": "ground truth messages in the bag that never arrived",
}


@dataclass
class ReportFiles:
    """Paths written into the report folder."""

    json: Path
    markdown: Path
    table: Path | None = None
    pr_curves: Path | None = None
    bev: Path | None = None
    overlays: list[Path] = field(default_factory=list)


def ap_table_markdown(result: KittiEvalResult, recall_points: int = 40) -> str:
    """Markdown AP table: one row per class and metric, Easy/Moderate/Hard columns."""
    lines = [f"| Class | Metric (R{recall_points}) | IoU | Easy | Moderate | Hard | GT counted |",
             "|---|---|---|---|---|---|---|"]
    for cls in result.classes:
        counted = "/".join(str(int(n)) for n in result.num_counted_gt[cls])
        for metric in ("3d", "bev", "bbox", "aos"):
            if metric not in result.precision[cls]:
                continue
            ap = result.average_precision(cls, metric, recall_points)
            lines.append(f"| {cls} | {_METRIC_NAMES[metric]} | {result.min_overlap[cls]:.2f} | "
                         f"{ap[0]:.2f} | {ap[1]:.2f} | {ap[2]:.2f} | {counted} |")
    return "\n".join(lines)


def _counts_markdown(counts: StreamCounts) -> str:
    lines = ["| Count | Frames |", "|---|---|"]
    lines += [f"| {text} | {getattr(counts, key)} |" for key, text in _COUNT_TEXT.items()]
    for reason, number in sorted(counts.unreadable_messages.items()):
        lines.append(f"| unreadable messages: {reason} | {number} |")
    return "\n".join(lines)


def report_markdown(evaluation: StreamEvaluation, files: ReportFiles,
                    settings: dict[str, Any]) -> str:
    """The human report: counts, AP tables (R40, R11) and links to the figures."""
    parts = ["# Replay evaluation", "", "## Frames", "", _counts_markdown(evaluation.counts), ""]
    lost = evaluation.counts.ground_truth_messages_lost
    if lost:
        parts += [f"**Ground truth lost**: {lost} of "
                  f"{evaluation.counts.ground_truth_messages_expected} ground truth messages in "
                  "the bag never arrived; the scores below miss those frames.", ""]
    if evaluation.result is None:
        parts += ["**No frame was evaluated**: no detection message matched a ground truth "
                  "frame by stamp.", ""]
    else:
        parts += ["## AP on the evaluated frames", "", ap_table_markdown(evaluation.result, 40),
                  "", ap_table_markdown(evaluation.result, 11), ""]
    if evaluation.result_with_dropped is not None:
        parts += ["## AP with the dropped frames scored as empty detections", "",
                  ap_table_markdown(evaluation.result_with_dropped, 40), ""]
    figures = [(name, path) for name, path in (("PR curves", files.pr_curves),
                                                ("Bird's-eye view", files.bev)) if path]
    figures += [(f"Overlay {path.stem}", path) for path in files.overlays]
    if figures:
        parts += ["## Figures", ""]
        parts += [f"![{name}]({path.relative_to(files.markdown.parent)})"
                  for name, path in figures]
        parts.append("")
    parts += ["## Settings", "", "```json", json.dumps(settings, indent=2, default=str), "```", ""]
    return "\n".join(parts)


def report_json(evaluation: StreamEvaluation, files: ReportFiles,
                settings: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable report."""
    def ap(result: KittiEvalResult | None) -> dict | None:
        return None if result is None else result.to_json_dict()

    result = evaluation.result
    return {
        "evaluated_frames": len(evaluation.stamps_ns),
        "counts": evaluation.counts.to_json_dict(),
        "classes": list(result.classes) if result else None,
        "ap": ap(result),
        "ground_truth_counted": None if result is None else {
            cls: result.num_counted_gt[cls].tolist() for cls in result.classes},
        "ap_with_dropped_frames_as_empty": ap(evaluation.result_with_dropped),
        "dropped_stamps_ns": evaluation.dropped_stamps_ns,
        "files": {name: str(path.relative_to(files.json.parent)) for name, path in (
            ("markdown", files.markdown), ("table", files.table), ("pr_curves", files.pr_curves),
            ("bev", files.bev))
            if path is not None} | {
            "overlays": [str(p.relative_to(files.json.parent)) for p in files.overlays]},
        "settings": settings,
    }


def write_stream_report(report_dir: Path, evaluation: StreamEvaluation,
                        settings: dict[str, Any],
                        overlays: list[Path] | None = None) -> ReportFiles:
    """Write report.json, report.md, pr_curves.png and bev.png (figures only when evaluated)."""
    report_dir = Path(report_dir)
    files = ReportFiles(json=report_dir / JSON_NAME, markdown=report_dir / MARKDOWN_NAME,
                        overlays=list(overlays or []))
    if evaluation.result is not None:
        files.pr_curves = report_dir / PR_CURVES_NAME
        plot_pr_curves(evaluation.result, files.pr_curves)
        index = busiest_frame(evaluation.ground_truth)
        files.bev = report_dir / BEV_NAME
        plot_bev(evaluation.ground_truth[index], evaluation.detections[index], files.bev,
                 f"frame stamped {evaluation.stamps_ns[index]} ns")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        if evaluation.result is not None:
            files.table = report_dir / TABLE_NAME
            files.table.write_text(evaluation.result.format_table())
        files.json.write_text(
            json.dumps(report_json(evaluation, files, settings), indent=2, default=str) + "\n")
        files.markdown.write_text(report_markdown(evaluation, files, settings))
    except OSError as err:
        raise EvaluationError(f"{report_dir}: cannot write the report ({err})") from err
    LOGGER.info("wrote %s and %s", files.json, files.markdown)
    return files
