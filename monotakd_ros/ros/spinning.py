"""The executor a node spins in, and a spin loop that lets worker threads run."""

from __future__ import annotations

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, SingleThreadedExecutor

EXECUTOR_CHOICES = ("events", "single_threaded")


def make_executor(kind: str, logger_name: str) -> Executor:
    """The executor for ``kind``: rclpy's C++ EventsExecutor for events where rclpy has it."""
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:  # rclpy before Jazzy
            rclpy.logging.get_logger(logger_name).warning(
                "executor 'events' needs rclpy.experimental.EventsExecutor (Jazzy or newer); "
                "using SingleThreadedExecutor")
        else:
            return EventsExecutor()
    return SingleThreadedExecutor()


def spin_until_shutdown(executor: Executor, context: Context | None = None) -> None:
    """Spin until the context shuts down (Ctrl-C raises KeyboardInterrupt as usual).

    spin_once in a loop rather than spin(): rclpy 9.1's EventsExecutor.spin() keeps the GIL
    and starves Python worker threads; spin_once releases it while it waits.
    """
    while rclpy.ok(context=context):
        executor.spin_once(timeout_sec=0.1)
