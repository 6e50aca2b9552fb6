"""Shipped files are found with or without a ROS install sourced."""

from __future__ import annotations

import pytest

from monotakd_ros import resources


def test_default_model_is_the_source_tree_copy_without_an_ament_prefix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    path = resources.default_model_path()
    assert path == resources.SOURCE_ROOT / "models" / "default_student"
    assert (path / "meta.json").is_file()
