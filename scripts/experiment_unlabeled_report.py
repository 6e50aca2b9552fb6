"""Fill the results section of docs/unlabeled_distillation.md from an experiment folder.

Reads, per seed and protocol, the last row of ``seed_N/<protocol>/<arm>/val_log.csv`` (each arm
is validated once, at its end, on ``arm_test``) and writes Car AP3D R40 Easy / Moderate / Hard
per arm and seed, then the per-seed paired differences of AP3D Moderate against the control
(and visible − hidden) with their mean, sample standard deviation (n − 1) and 95 % Student-t
confidence interval: for Car, and for every other class whose AP3D Moderate the logs carry.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

from monotakd_ros.eval.paired import PairedStats, paired_stats

KEYS = tuple(f"car_ap3d_r40_{d}" for d in ("easy", "moderate", "hard"))
MODERATE = "_ap3d_r40_moderate"
ARMS = ("control", "hidden", "visible", "raw")
PAIRS = (("hidden", "control"), ("visible", "control"), ("raw", "control"),
         ("visible", "hidden"))
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def final_metrics(run: Path) -> dict[str, float] | None:
    """The last validation row of a run folder (None when it has none yet)."""
    log = run / "val_log.csv"
    if not log.is_file():
        return None
    with log.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None) and k != "step"}


def paired_row(label: str, stats: PairedStats) -> str:
    """One table row: per-seed differences, mean, sample std, 95 % t interval, verdict."""
    if stats.n < 2:
        std, interval = "n/a", "n/a (one seed)"
    else:
        std, interval = f"{stats.std:.2f}", f"[{stats.ci_low:+.2f}, {stats.ci_high:+.2f}]"
    return (f"| {label} | {', '.join(f'{d:+.2f}' for d in stats.differences)} | "
            f"{stats.mean:+.2f} | {std} | {interval} | {stats.verdict} |")


def protocol_section(out: Path, protocol: str, seeds: list[str]) -> list[str]:
    """Markdown of one protocol: per-seed arms and the paired differences."""
    results = {seed: {arm: final_metrics(out / f"seed_{seed}" / protocol / arm) for arm in ARMS}
               for seed in seeds}
    arms = [arm for arm in ARMS if any(results[s][arm] for s in seeds)]
    lines = [f"**Protocol `{protocol}`**, Car AP3D R40 E / M / H on `arm_test`:", "",
             "| seed | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for seed in seeds:
        cells = [" / ".join(f"{results[seed][arm][k]:.2f}" for k in KEYS)
                 if results[seed][arm] else "—" for arm in arms]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences of AP3D R40 Moderate (per seed; mean, sample std, "
              "95 % t interval; \"> 0 holds\" only when the whole interval is above 0):", "",
              "| class | difference | per seed | mean | std | 95 % CI | > 0 |",
              "|---|---|---|---|---|---|---|"]
    for key in moderate_keys([m for s in seeds for m in results[s].values() if m]):
        for a, b in PAIRS:
            paired = [s for s in seeds if results[s][a] and results[s][b]]
            if not paired:
                continue
            stats = paired_stats({int(s): results[s][a][key] - results[s][b][key]
                                  for s in paired})
            lines.append(paired_row(f"{key.removesuffix(MODERATE).capitalize()} | {a} − {b}",
                                    stats))
    return lines + [""]


def moderate_keys(runs: list[dict[str, float]]) -> list[str]:
    """``<class>_ap3d_r40_moderate`` columns every run has, Car first."""
    common = set.intersection(*(set(run) for run in runs)) if runs else set()
    keys = sorted(k for k in common if k.endswith(MODERATE))
    return sorted(keys, key=lambda k: k != "car" + MODERATE)


def results_section(out: Path, seeds: list[str], protocols: list[str], smoke: bool,
                    elapsed_s: float | None) -> str:
    """The markdown between the results markers."""
    kind = "SMOKE (tiny sizes, numbers meaningless)" if smoke else "full"
    wall = f"; wall time {elapsed_s / 60:.1f} min" if elapsed_s is not None else ""
    lines = [BEGIN, f"Run: {kind}; seeds {', '.join(seeds)}; machine {platform.platform()}, "
             f"{os.cpu_count()} CPUs{wall}.", ""]
    for protocol in protocols:
        lines += protocol_section(out, protocol, seeds)
    return "\n".join(lines + [END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="experiment folder")
    parser.add_argument("--doc", type=Path, required=True, help="markdown file with the markers")
    parser.add_argument("--seeds", nargs="+", required=True)
    parser.add_argument("--protocols", nargs="+", default=["joint"])
    parser.add_argument("--elapsed-s", type=float, default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    section = results_section(args.out, args.seeds, args.protocols, args.smoke, args.elapsed_s)
    text = args.doc.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    args.doc.write_text(text[:start] + section + text[end:])
    print(section)


if __name__ == "__main__":
    main()
