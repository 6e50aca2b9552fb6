"""Test-wide environment: DDS on loopback only and a ROS domain of our own per run."""

from __future__ import annotations

import os

# Discovery must never leave the machine, and parallel runs must not hear each other.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
