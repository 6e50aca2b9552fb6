"""The demo reports only what this run wrote: never a report left by an earlier run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monotakd_ros import demo
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
