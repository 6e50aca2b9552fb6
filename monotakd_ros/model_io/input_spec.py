"""InputSpec: what a network expects as input, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from monotakd_ros.errors import ConfigError


@dataclass(frozen=True)
class InputSpec:
    """Network input: size, image normalisation, class names and the point-cloud range."""

    input_hw: tuple[int, int] = (384, 1248)  # (H, W); multiples of 32 for the image trunk
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB, image scaled to [0, 1]
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    class_names: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    # (x_min, y_min, z_min, x_max, y_max, z_max) in the LiDAR frame, metres
    point_range: tuple[float, float, float, float, float, float] = (
        2.0, -30.08, -3.0, 46.8, 30.08, 1.0)

    def __post_init__(self) -> None:
        if len(self.input_hw) != 2 or min(self.input_hw) < 1:
            raise ConfigError(f"input_spec.input_hw: need two positive sizes, got "
                              f"{self.input_hw!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"input_spec.mean/std: need 3 values each and std > 0, got "
                              f"mean={self.mean!r} std={self.std!r}")
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise ConfigError(f"input_spec.class_names: need distinct names, got "
                              f"{self.class_names!r}")
        low, high = self.point_range[:3], self.point_range[3:]
        if len(self.point_range) != 6 or any(lo >= hi for lo, hi in zip(low, high, strict=True)):
            raise ConfigError(f"input_spec.point_range: need (x_min, y_min, z_min, x_max, "
                              f"y_max, z_max) with min < max, got {self.point_range!r}")
