"""Diagnostics levels from processing time, drop rate and input rate."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from monotakd_ros.errors import ConfigError
from monotakd_ros.ros.diagnostics import (
    ERROR,
    OK,
    WARN,
    DiagnosticThresholds,
    PipelineCounters,
    PipelineWindow,
    diagnostic_array_msg,
    pipeline_level,
    window_values,
)

THRESHOLDS = DiagnosticThresholds()  # warn/error: 100/500 ms, 0.5/0.9 dropped, 5/0.5 Hz


def window(processing_ms: float = 50.0, processed: int = 10, dropped: int = 0,
           images: int = 10) -> PipelineWindow:
    return PipelineWindow(duration_s=1.0, images=images, processed=processed, dropped=dropped,
                          processing_ms=[processing_ms] * processed)


@pytest.mark.parametrize(("win", "level", "message"), [
    (window(), OK, "OK"),
    (window(processing_ms=150.0), WARN, "processing 150.0 ms > 100.0 ms"),
    (window(processing_ms=600.0), ERROR, "processing 600.0 ms > 500.0 ms"),
    (window(processed=4, dropped=6), WARN, "drop rate 0.60 > 0.50"),
    (window(processed=1, dropped=19, images=20), ERROR, "drop rate 0.95 > 0.90"),
    (window(images=2, processed=2), WARN, "input 2.0 Hz < 5.0 Hz"),
    (window(images=0, processed=0), ERROR, "input 0.0 Hz < 0.5 Hz"),
])
def test_levels_and_reasons(win: PipelineWindow, level: int, message: str) -> None:
    assert pipeline_level(win, THRESHOLDS) == (level, message)


def test_worst_level_wins_and_all_reasons_are_listed() -> None:
    level, message = pipeline_level(window(processing_ms=150.0, images=2, processed=1,
                                           dropped=19), THRESHOLDS)
    assert level == ERROR
    assert message == ("processing 150.0 ms > 100.0 ms; drop rate 0.95 > 0.90; "
                       "input 2.0 Hz < 5.0 Hz")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"processing_warn_ms": 600.0},
     "diagnostics.processing_warn_ms / diagnostics.processing_error_ms: need .* got 600.0 / 500"),
    ({"drop_rate_error": 1.5}, "diagnostics.drop_rate_error: must lie in .0, 1., got 1.5"),
    ({"drop_rate_warn": 0.95}, "diagnostics.drop_rate_warn / diagnostics.drop_rate_error"),
    ({"input_rate_error_hz": 10.0}, "diagnostics.input_rate_error_hz / .*input_rate_warn_hz"),
    ({"processing_warn_ms": 0.0}, "diagnostics.processing_warn_ms: must be > 0, got 0.0"),
])
def test_inconsistent_thresholds_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DiagnosticThresholds(**kwargs)


def test_counters_fill_one_window_per_period() -> None:
    counters = PipelineCounters(start_s=100.0)
    for _ in range(4):
        counters.add_image()
    counters.add_camera_info()
    counters.add_processed(20.0, 35.0)
    counters.add_processed(30.0, 45.0)
    counters.add_bad_input()
    counters.add_dropped(2)
    win = counters.take_window(now_s=102.0)
    assert (win.duration_s, win.images, win.camera_infos, win.processed, win.dropped,
            win.bad_inputs) == (2.0, 4, 1, 2, 2, 1)
    assert win.input_rate_hz == 2.0 and win.drop_rate == 0.5
    values = window_values(win)
    assert values["processing_ms_median"] == "25.00" and values["latency_ms_median"] == "40.00"
    assert counters.take_window(now_s=103.0).images == 0  # a fresh window
    assert counters.total_processed == 2 and counters.total_bad_inputs == 1


def test_message_carries_level_and_values() -> None:
    from builtin_interfaces.msg import Time

    msg = diagnostic_array_msg(Time(sec=5), "det: pipeline", "/cam", WARN, "slow", {"a": "1"})
    status = msg.status[0]
    assert msg.header.stamp.sec == 5 and status.level == DiagnosticStatus.WARN
    assert (status.name, status.message, status.hardware_id) == ("det: pipeline", "slow", "/cam")
    assert [(kv.key, kv.value) for kv in status.values] == [("a", "1")]


def failing_window(images: int = 10, camera_infos: int = 10, processed: int = 0,
                   bad_inputs: int = 0, internal_errors: int = 0) -> PipelineWindow:
    """A 1 s window at 10 Hz input whose frames partly or wholly failed."""
    return PipelineWindow(duration_s=1.0, images=images, camera_infos=camera_infos,
                          processed=processed, bad_inputs=bad_inputs,
                          internal_errors=internal_errors, processing_ms=[50.0] * processed)


@pytest.mark.parametrize(("win", "level", "message"), [
    # Every frame rejected: the old levels said OK here.
    (failing_window(bad_inputs=10), ERROR,
     "10 images, none processed; bad input rate 1.00 > 0.50"),
    # Images but no CameraInfo: nothing can be processed.
    (failing_window(camera_infos=0), ERROR, "10 images, none processed; no CameraInfo"),
    (failing_window(processed=9, bad_inputs=1), WARN, "bad input rate 0.10 > 0.00"),
    (failing_window(processed=4, bad_inputs=6), ERROR, "bad input rate 0.60 > 0.50"),
    (failing_window(processed=9, internal_errors=1), ERROR, "1 internal errors (see the log)"),
    (failing_window(processed=10), OK, "OK"),
])
def test_failing_frames_set_the_level(win: PipelineWindow, level: int, message: str) -> None:
    assert pipeline_level(win, THRESHOLDS) == (level, message)


def test_internal_errors_are_counted_apart_from_bad_input() -> None:
    counters = PipelineCounters(start_s=0.0)
    assert counters.add_internal_error("RuntimeError") is True  # first: log the traceback
    assert counters.add_internal_error("RuntimeError") is False
    assert counters.add_internal_error("KeyError") is True
    counters.add_bad_input()
    win = counters.take_window(now_s=1.0)
    assert (win.internal_errors, win.bad_inputs) == (3, 1)
    assert window_values(win)["internal_errors"] == "3"
    assert counters.internal_errors_by_kind == {"RuntimeError": 2, "KeyError": 1}
    assert counters.total_bad_inputs == 1
    with pytest.raises(ConfigError, match="diagnostics.bad_input_rate_warn / "):
        DiagnosticThresholds(bad_input_rate_warn=0.6, bad_input_rate_error=0.5)
