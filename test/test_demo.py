"""The demo reports only what this run wrote, on a drive that holds all three classes."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from monotakd_ros import demo
from monotakd_ros.data.kitti.raw_drive import RawDrive
from monotakd_ros.data.synth.writer import write_raw_drives
from monotakd_ros.eval.stream_report import JSON_NAME


@pytest.fixture
def out_with_stale_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stale = tmp_path / "report"
    stale.mkdir()
    (stale / JSON_NAME).write_text('{"evaluated_frames": 60}')
    (stale / "report.md").write_text("an earlier run")
    monkeypatch.setattr(demo, "demo_bag", lambda out, frames, seed: out / "bag")
    return tmp_path


def test_an_interrupted_run_does_not_point_at_an_earlier_report(
        out_with_stale_report: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def interrupted(argv: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.replay_eval, "main", interrupted)
    with caplog.at_level(logging.INFO):
        assert demo.main(["--out", str(out_with_stale_report)]) == 130
    assert "report in" not in caplog.text
    assert "stopped after" in caplog.text and "with status 130; no report was written" in (
        caplog.text)
    assert not (out_with_stale_report / "report").exists()


def test_a_failed_run_leaves_no_report_behind(out_with_stale_report: Path,
                                              monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(demo.replay_eval, "main", lambda argv: 1)
    with caplog.at_level(logging.INFO):
        assert demo.main(["--out", str(out_with_stale_report)]) == 1
    assert "report in" not in caplog.text
    assert not (out_with_stale_report / "report" / JSON_NAME).exists()


def test_a_finished_run_points_at_its_own_report(out_with_stale_report: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog) -> None:
    def evaluate(argv: list[str]) -> int:
        report = Path(argv[argv.index("--report-dir") + 1])
        assert not report.exists()  # the earlier run's files are gone before this run starts
        report.mkdir()
        (report / JSON_NAME).write_text('{"evaluated_frames": 3}')
        return 0

    monkeypatch.setattr(demo.replay_eval, "main", evaluate)
    with caplog.at_level(logging.INFO):
        assert demo.main(["--out", str(out_with_stale_report)]) == 0
    assert f"report in {out_with_stale_report / 'report'}" in caplog.text


def test_the_default_demo_drive_holds_all_three_classes(tmp_path: Path) -> None:
    seed = demo.build_parser().parse_args([]).seed
    (drive,) = write_raw_drives(tmp_path, num_drives=1, frames_per_drive=15, seed=seed,
                                config=demo.DEMO_SCENES)
    labels = RawDrive(drive)
    names = Counter(str(name) for index in range(15) for name in labels.frame_labels(index).names)
    assert min(names["Car"], names["Pedestrian"], names["Cyclist"]) >= 10, names
