"""LatestSlot: newest item wins, replaced items are counted, close wakes the worker."""

from __future__ import annotations

import threading
import time

from monotakd_ros.ros.latest_slot import LatestSlot


def test_newest_item_wins_and_drops_are_counted() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for item in (1, 2, 3):
        slot.put(item)
    assert slot.take(timeout_s=0.0) == 3
    assert slot.dropped == 2
    assert slot.take(timeout_s=0.0) is None  # taken items are gone
    slot.put(4)
    assert slot.take(timeout_s=0.0) == 4 and slot.dropped == 2


def test_take_waits_for_an_item_and_times_out() -> None:
    slot: LatestSlot[str] = LatestSlot()
    start = time.monotonic()
    assert slot.take(timeout_s=0.1) is None
    assert time.monotonic() - start >= 0.09
    threading.Timer(0.05, slot.put, args=("late",)).start()
    assert slot.take(timeout_s=5.0) == "late"


def test_close_releases_a_waiting_taker_and_reopen_accepts_again() -> None:
    slot: LatestSlot[int] = LatestSlot()
    result: list[int | None] = []
    taker = threading.Thread(target=lambda: result.append(slot.take(timeout_s=None)))
    taker.start()
    time.sleep(0.05)
    slot.close()
    taker.join(timeout=2.0)
    assert not taker.is_alive() and result == [None]
    slot.put(7)
    assert slot.take(timeout_s=0.0) is None  # closed: nothing comes out
    slot.reopen()
    slot.put(8)
    assert slot.take(timeout_s=0.0) == 8
