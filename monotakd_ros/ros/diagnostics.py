"""Pipeline health of the detector: counters per period, OK/WARN/ERROR levels, DiagnosticArray.

Beyond the thresholds on processing time, drop rate and input rate, a window is ERROR when
images arrived but none was processed (every frame failed, or no CameraInfo came) and when the
model itself failed (internal errors are counted apart from bad input); the share of frames
rejected as bad input turns it WARN, then ERROR.
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.errors import ConfigError

OK, WARN, ERROR = 0, 1, 2
_LEVEL_BYTES = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN,
                ERROR: DiagnosticStatus.ERROR}


@dataclass(frozen=True)
class DiagnosticThresholds:
    """Where the pipeline turns WARN and ERROR (the detector's ``diagnostics.*`` parameters)."""

    processing_warn_ms: float = bounded(100.0, gt=0, help="median processing time (ms) above "
                                        "which: WARN")
    processing_error_ms: float = bounded(500.0, gt=0, help="median processing time (ms) above "
                                         "which: ERROR")
    drop_rate_warn: float = bounded(0.5, ge=0, le=1, help="fraction of frames dropped "
                                    "(newest-only) above which: WARN")
    drop_rate_error: float = bounded(0.9, ge=0, le=1, help="fraction of frames dropped above "
                                     "which: ERROR")
    input_rate_warn_hz: float = bounded(5.0, ge=0, help="input rate (Hz) below which: WARN")
    input_rate_error_hz: float = bounded(0.5, ge=0, help="input rate (Hz) below which: ERROR")
    bad_input_rate_warn: float = bounded(0.0, ge=0, le=1, help="fraction of frames rejected "
                                         "as bad input above which: WARN (0: any)")
    bad_input_rate_error: float = bounded(0.5, ge=0, le=1, help="fraction of frames rejected "
                                          "as bad input above which: ERROR")

    def __post_init__(self) -> None:
        check_fields(self, "diagnostics")
        pairs = (("processing_warn_ms", "processing_error_ms"),
                 ("drop_rate_warn", "drop_rate_error"),
                 ("bad_input_rate_warn", "bad_input_rate_error"),
                 ("input_rate_error_hz", "input_rate_warn_hz"))
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"diagnostics.{low} / diagnostics.{high}: need {low} <= "
                                  f"{high}, got {getattr(self, low)} / {getattr(self, high)}")


@dataclass
class PipelineWindow:
    """What happened during one diagnostics period."""

    duration_s: float
    images: int = 0
    camera_infos: int = 0
    processed: int = 0
    dropped: int = 0  # frames replaced by a newer one before the worker took them
    bad_inputs: int = 0  # frames rejected for their content (encoding, CameraInfo, pixels)
    internal_errors: int = 0  # frames the model or node code failed on (not the input's fault)
    processing_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    @property
    def input_rate_hz(self) -> float:
        """Images received per second."""
        return self.images / self.duration_s if self.duration_s > 0.0 else 0.0

    @property
    def drop_rate(self) -> float:
        """Fraction of complete frames that were never processed."""
        offered = self.processed + self.dropped
        return self.dropped / offered if offered else 0.0

    @property
    def bad_input_rate(self) -> float:
        """Fraction of the frames taken for processing that were rejected as bad input."""
        taken = self.processed + self.bad_inputs + self.internal_errors
        return self.bad_inputs / taken if taken else 0.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def pipeline_level(window: PipelineWindow, thresholds: DiagnosticThresholds) -> tuple[int, str]:
    """Worst level over processing time, drop rate and input rate, and the reasons for it."""
    checks = [
        (_median(window.processing_ms), thresholds.processing_warn_ms,
         thresholds.processing_error_ms, "processing {:.1f} ms > {:.1f} ms", True),
        (window.drop_rate, thresholds.drop_rate_warn, thresholds.drop_rate_error,
         "drop rate {:.2f} > {:.2f}", True),
        (window.input_rate_hz, thresholds.input_rate_warn_hz, thresholds.input_rate_error_hz,
         "input {:.1f} Hz < {:.1f} Hz", False),
    ]
    checks.append((window.bad_input_rate, thresholds.bad_input_rate_warn,
                   thresholds.bad_input_rate_error, "bad input rate {:.2f} > {:.2f}", True))
    level, reasons = OK, []
    if window.images and not window.processed:
        missing = "; no CameraInfo" if not window.camera_infos else ""
        level = ERROR
        reasons.append(f"{window.images} images, none processed{missing}")
    if window.internal_errors:
        level = ERROR
        reasons.append(f"{window.internal_errors} internal errors (see the log)")
    for value, warn, error, text, above_is_bad in checks:
        is_error = value > error if above_is_bad else value < error
        is_warn = value > warn if above_is_bad else value < warn
        if is_error or is_warn:
            level = max(level, ERROR if is_error else WARN)
            reasons.append(text.format(value, error if is_error else warn))
    return level, "; ".join(reasons) if reasons else "OK"


def window_values(window: PipelineWindow) -> dict[str, str]:
    """The figures of a window as diagnostic key/value strings."""
    return {
        "images": str(window.images),
        "input_rate_hz": f"{window.input_rate_hz:.2f}",
        "camera_infos": str(window.camera_infos),
        "processed": str(window.processed),
        "dropped": str(window.dropped),
        "drop_rate": f"{window.drop_rate:.3f}",
        "bad_inputs": str(window.bad_inputs),
        "internal_errors": str(window.internal_errors),
        "processing_ms_median": f"{_median(window.processing_ms):.2f}",
        "processing_ms_max": f"{max(window.processing_ms, default=0.0):.2f}",
        "latency_ms_median": f"{_median(window.latency_ms):.2f}",
    }


def diagnostic_array_msg(stamp: Any, name: str, hardware_id: str, level: int, message: str,
                         values: Mapping[str, str]) -> DiagnosticArray:
    """A DiagnosticArray holding one status."""
    status = DiagnosticStatus(level=_LEVEL_BYTES[level], name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    out = DiagnosticArray(status=[status])
    out.header.stamp = stamp
    return out


class PipelineCounters:
    """Thread-safe counters filled by callbacks and the worker, emptied once per period."""

    def __init__(self, start_s: float) -> None:
        self._lock = threading.Lock()
        self._window = PipelineWindow(duration_s=0.0)
        self._start_s = start_s
        self.total_processed = 0
        self.total_bad_inputs = 0
        self.internal_errors_by_kind: Counter[str] = Counter()

    def add_image(self) -> None:
        """One Image message arrived."""
        with self._lock:
            self._window.images += 1

    def add_camera_info(self) -> None:
        """One CameraInfo message arrived."""
        with self._lock:
            self._window.camera_infos += 1

    def add_processed(self, processing_ms: float, latency_ms: float) -> None:
        """The worker published the detections of one frame."""
        with self._lock:
            self._window.processed += 1
            self._window.processing_ms.append(processing_ms)
            self._window.latency_ms.append(latency_ms)
            self.total_processed += 1

    def add_bad_input(self) -> None:
        """A frame was rejected (bad encoding, CameraInfo, pixels)."""
        with self._lock:
            self._window.bad_inputs += 1
            self.total_bad_inputs += 1

    def add_internal_error(self, kind: str) -> bool:
        """The model or node code failed on a frame; True the first time for this ``kind``."""
        with self._lock:
            self._window.internal_errors += 1
            self.internal_errors_by_kind[kind] += 1
            return self.internal_errors_by_kind[kind] == 1

    def add_dropped(self, count: int) -> None:
        """Frames replaced by newer ones before processing."""
        with self._lock:
            self._window.dropped += count

    def take_window(self, now_s: float) -> PipelineWindow:
        """The window since the last call (its duration set), and start a new one."""
        with self._lock:
            window, self._window = self._window, PipelineWindow(duration_s=0.0)
            window.duration_s = max(now_s - self._start_s, 0.0)
            self._start_s = now_s
        return window
