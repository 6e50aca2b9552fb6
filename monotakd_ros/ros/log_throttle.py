"""Per-kind log throttling that says how many messages it held back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _KindState:
    last_emit_s: float
    suppressed: int = 0


class KindThrottle:
    """At most one message per kind every ``interval_s``; kinds never hide each other.

    ``admit`` returns the text to log (with the count of messages of that kind held back since
    its last line) or None while the kind is throttled.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._kinds: dict[str, _KindState] = {}

    def admit(self, kind: str, text: str, now_s: float) -> str | None:
        """The line to log now for ``kind``, or None to hold it back."""
        state = self._kinds.get(kind)
        if state is not None and now_s - state.last_emit_s < self.interval_s:
            state.suppressed += 1
            return None
        held = state.suppressed if state is not None else 0
        self._kinds[kind] = _KindState(last_emit_s=now_s)
        if held:
            return f"{text} [{kind}: {held} similar message(s) held back in the last " \
                   f"{now_s - state.last_emit_s:.1f} s]"
        return text
