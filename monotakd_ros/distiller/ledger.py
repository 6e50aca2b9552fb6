"""Which frames a distillation run has learnt from, and which it skipped, saved with the weights.

A frame is identified by its source (a bag path, or the image topic in topic mode) and its image
stamp. It enters the ledger only once the optimiser step that used it has been applied, and the
ledger is written in the same atomic checkpoint as the weights, so after a crash the ledger and
the weights always agree: a resumed run relearns exactly the frames the weights lack.

Skip counts follow the same rule. Counts of a source still being read (``open``) are kept apart
from those of finished sources (``done``): a resumed bag is read again from its start, so its
open counts are recounted rather than carried over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from monotakd_ros.errors import CheckpointError


@dataclass
class FrameLedger:
    """Frames used in the current pass, by source, and the sources finished in this pass."""

    pass_index: int = 0
    frames_used_total: int = 0  # over every pass
    consumed: dict[str, set[int]] = field(default_factory=dict)  # source -> image stamps (ns)
    finished_sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Frames used in the current pass."""
        return sum(len(stamps) for stamps in self.consumed.values())

    def contains(self, source: str, stamp_ns: int) -> bool:
        """Whether the frame already contributed to the weights in this pass."""
        return stamp_ns in self.consumed.get(source, ())

    def add(self, source: str, stamp_ns: int) -> None:
        """Record a frame whose optimiser step has been applied."""
        self.consumed.setdefault(source, set()).add(stamp_ns)
        self.frames_used_total += 1

    def finish_source(self, source: str) -> None:
        """Mark a source read to its end in this pass (a resumed run skips it)."""
        if source not in self.finished_sources:
            self.finished_sources.append(source)

    def is_finished(self, source: str) -> bool:
        """Whether ``source`` was read to its end in this pass."""
        return source in self.finished_sources

    def start_next_pass(self) -> None:
        """Forget the per-pass records; every frame may be used once more."""
        self.pass_index += 1
        self.consumed.clear()
        self.finished_sources.clear()

    def to_data(self) -> dict[str, Any]:
        """JSON-safe form (stamps sorted) for the checkpoint's trainer state."""
        return {"pass_index": self.pass_index, "frames_used_total": self.frames_used_total,
                "consumed": {source: sorted(stamps) for source, stamps in self.consumed.items()},
                "finished_sources": list(self.finished_sources)}

    @classmethod
    def from_data(cls, data: Any, where: str) -> FrameLedger:
        """Inverse of ``to_data``; ``where`` names the checkpoint in errors."""
        try:
            return cls(pass_index=int(data["pass_index"]),
                       frames_used_total=int(data["frames_used_total"]),
                       consumed={str(source): {int(s) for s in stamps}
                                 for source, stamps in data["consumed"].items()},
                       finished_sources=[str(s) for s in data["finished_sources"]])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{where}: unreadable frame ledger ({err!r})") from err


@dataclass
class SkipTally:
    """Frames left out, by reason: of finished sources (``done``) and of the open one."""

    done: Counter[str] = field(default_factory=Counter)
    open: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, count: int = 1) -> None:
        """Count ``count`` frames of the open source skipped for ``reason``."""
        if count > 0:
            self.open[reason] += count

    def close_source(self, extra: Counter[str] | None = None) -> None:
        """The open source is finished: move its counts (plus ``extra``) to ``done``."""
        self.done.update(self.open)
        if extra:
            self.done.update(extra)
        self.open.clear()

    def totals(self, extra: Counter[str] | None = None) -> dict[str, int]:
        """Every count so far, including ``extra`` counts of the source being read."""
        total = Counter(self.done)
        total.update(self.open)
        if extra:
            total.update(extra)
        return dict(sorted(total.items()))

    def to_data(self) -> dict[str, dict[str, int]]:
        """JSON-safe form for the checkpoint."""
        return {"done": dict(self.done), "open": dict(self.open)}

    @classmethod
    def from_data(cls, data: Any, where: str, keep_open: bool) -> SkipTally:
        """Inverse of ``to_data``; ``keep_open`` False drops counts a re-read will recount."""
        try:
            done = Counter({str(k): int(v) for k, v in data["done"].items()})
            open_counts = Counter({str(k): int(v) for k, v in data["open"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{where}: unreadable skip counts ({err!r})") from err
        if keep_open:
            done.update(open_counts)
        return cls(done=done)
