"""Initialise one model from another's weights where names and shapes match (e.g. TA → student).

Upstream starts the student from the TA: both share the camera architecture except the
student's depth head (and its trunk's depth stage). Every tensor is accounted for: loaded,
skipped because the source lacks it, skipped for a shape mismatch, or unused in the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class WeightTransfer:
    """What an initialisation loaded and what it skipped, by state-dict name."""

    loaded: list[str] = field(default_factory=list)
    absent_in_source: list[str] = field(default_factory=list)  # kept at their initial values
    shape_mismatch: list[str] = field(default_factory=list)  # "name: source (..) vs model (..)"
    unused_in_source: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        """Every model tensor that was not loaded, with the reason."""
        return ([f"{name} (absent from the checkpoint)" for name in self.absent_in_source]
                + [f"{entry} (shape mismatch)" for entry in self.shape_mismatch])

    def summary(self) -> str:
        """One paragraph naming every skipped and unused tensor (never truncated)."""
        lines = [f"loaded {len(self.loaded)} tensors; skipped {len(self.skipped)}"
                 + (": " + ", ".join(self.skipped) if self.skipped else "")]
        if self.unused_in_source:
            lines.append(f"unused from the checkpoint {len(self.unused_in_source)}: "
                         + ", ".join(self.unused_in_source))
        return "; ".join(lines)


def transfer_matching_weights(source: nn.Module, target: nn.Module) -> WeightTransfer:
    """Copy ``source``'s tensors into ``target`` where the name exists and the shape agrees."""
    source_state = source.state_dict()
    target_state = target.state_dict()
    report = WeightTransfer()
    update: dict[str, torch.Tensor] = {}
    for name, tensor in target_state.items():
        if name not in source_state:
            report.absent_in_source.append(name)
        elif source_state[name].shape != tensor.shape:
            report.shape_mismatch.append(f"{name}: checkpoint {tuple(source_state[name].shape)}"
                                         f" vs model {tuple(tensor.shape)}")
        else:
            update[name] = source_state[name]
            report.loaded.append(name)
    report.unused_in_source = sorted(set(source_state) - set(target_state))
    target.load_state_dict(update, strict=False)
    return report
