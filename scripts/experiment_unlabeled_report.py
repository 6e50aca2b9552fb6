"""Fill the results section of docs/unlabeled_distillation.md from an experiment folder.

Reads, per seed, ``seed_N/distill/eval_results.json`` (before / after distillation on the
unlabelled bags) and the last row of ``seed_N/control/val_log.csv`` (the labelled control), and
writes Car AP3D R40 Easy / Moderate / Hard with the changes as mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
from pathlib import Path

KEYS = tuple(f"car_ap3d_r40_{d}" for d in ("easy", "moderate", "hard"))
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def seed_results(run: Path) -> dict[str, dict]:
    """Before / after / control metrics and the distillation report of one seed's folder."""
    results = json.loads((run / "distill" / "eval_results.json").read_text())
    seed = {"before": results["before"]["metrics"], "after": results["after"]["metrics"],
            "report": results["report"]}
    control_log = run / "control" / "val_log.csv"
    if control_log.is_file():
        with control_log.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            seed["control"] = {k: float(rows[-1][k]) for k in KEYS}
            seed["control_step"] = int(rows[-1]["step"])
    return seed


def triple(metrics: dict[str, float]) -> str:
    """Easy / Moderate / Hard cell."""
    return " / ".join(f"{float(metrics[k]):.2f}" for k in KEYS)


def change(per_seed: list[dict], minuend: str, subtrahend: str) -> str:
    """Mean ± population std over seeds of ``minuend - subtrahend``, per difficulty."""
    cells = []
    for key in KEYS:
        values = [float(s[minuend][key]) - float(s[subtrahend][key]) for s in per_seed]
        cells.append(f"{statistics.mean(values):+.2f} ± {statistics.pstdev(values):.2f}")
    return " / ".join(cells)


def results_section(out: Path, seeds: list[str], smoke: bool) -> str:
    """The markdown between the results markers."""
    per_seed = [seed_results(out / f"seed_{seed}") for seed in seeds]
    with_control = all("control" in s for s in per_seed)
    header = "| seed | before (E / M / H) | after distillation | "
    header += "labelled control | " if with_control else ""
    header += "unlabelled frames | replayed labelled frames | steps | distill min | frames/s |"
    rows = []
    for seed, result in zip(seeds, per_seed, strict=True):
        report = result["report"]
        control = f" {triple(result['control'])} |" if with_control else ""
        rows.append(f"| {seed} | {triple(result['before'])} | {triple(result['after'])} |"
                    f"{control} {report['frames_used']} | "
                    f"{report.get('labelled_frames_used', 0)} | {report['step']} | "
                    f"{report['elapsed_s'] / 60:.1f} | {report['frames_per_s']:.2f} |")
    run_kind = "SMOKE (tiny sizes, numbers meaningless)" if smoke else "full"
    lines = [
        BEGIN,
        f"Run: {run_kind}; seeds {', '.join(seeds)}; machine {platform.platform()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
        *rows,
        "",
        "- after − before (mean ± population std over seeds), E / M / H: "
        f"**{change(per_seed, 'after', 'before')}**",
    ]
    if with_control:
        lines += [
            f"- labelled control − before: **{change(per_seed, 'control', 'before')}**",
            f"- after − labelled control: **{change(per_seed, 'after', 'control')}**",
        ]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="experiment folder")
    parser.add_argument("--doc", type=Path, required=True, help="markdown file with the markers")
    parser.add_argument("--seeds", nargs="+", required=True)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    section = results_section(args.out, args.seeds, args.smoke)
    text = args.doc.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    args.doc.write_text(text[:start] + section + text[end:])
    print(section)


if __name__ == "__main__":
    main()
