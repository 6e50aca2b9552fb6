"""The ablation's rows (stage + distillation preset) and the paired comparisons among them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monotakd_ros.distill.config import distill_preset
from monotakd_ros.errors import ConfigError
from monotakd_ros.training.stages import StageName


@dataclass(frozen=True)
class AblationRow:
    """One line of the table: which stage, with which distillation preset."""

    key: str  # stable: folder name and JSON key
    title: str
    stage: StageName
    distill: str | None = None


ROWS: tuple[AblationRow, ...] = (
    AblationRow("teacher", "LiDAR teacher", "teacher"),
    AblationRow("ta", "Teaching assistant (LiDAR depth)", "ta"),
    AblationRow("student_none", "Student, no KD", "student", "none"),
    AblationRow("student_response", "Student, response only", "student", "response"),
    AblationRow("student_imd", "Student, IMD + response", "student", "imd_response"),
    AblationRow("student_cmrd", "Student, CMRD + response", "student", "cmrd_response"),
    AblationRow("student_takd", "Student, full TAKD (IMD + CMRD + response)", "student", "takd"),
    AblationRow("student_cmkd", "Student, CMKD as published (raw MSE vs F_T + response)",
                "student", "cmkd"),
    AblationRow("student_upstream", "Student, upstream preset", "student", "upstream"),
)
ROW_KEYS = tuple(row.key for row in ROWS)


@dataclass(frozen=True)
class Comparison:
    """A linear contrast of rows per seed; it "holds" when its 95 % interval is above 0."""

    key: str
    name: str
    weights: dict[str, float]
    question: str


def _difference(a: str, b: str, name: str, question: str) -> Comparison:
    return Comparison(f"{a}-{b}", name, {a: 1.0, b: -1.0}, question)


PAIRED: tuple[Comparison, ...] = (
    _difference("student_takd", "student_cmkd", "TAKD − CMKD", "TAKD beats CMKD"),
    _difference("student_cmkd", "student_none", "CMKD − none", "CMKD beats no distillation"),
    _difference("student_takd", "student_none", "TAKD − none", "TAKD beats no distillation"),
    _difference("student_takd", "student_imd", "TAKD − IMD",
                "the spatial cues (CMRD) add to IMD"),
    _difference("student_imd", "student_response", "IMD − response",
                "IMD adds to response distillation"),
    _difference("student_cmrd", "student_response", "CMRD − response",
                "CMRD adds to response distillation"),
    _difference("student_response", "student_none", "response − none",
                "response distillation beats none"),
    _difference("student_upstream", "student_none", "upstream − none",
                "the upstream preset beats no distillation"),
    _difference("teacher", "ta", "teacher − TA", "the LiDAR teacher beats the TA"),
)
# The 2 × 2 factorial with response on: response (neither), imd, cmrd, takd (both).
# Main effect = mean of the two simple effects; interaction = difference of IMD's simple
# effects with and without CMRD (> 0: together they gain more than the sum of each alone).
FACTORIAL: tuple[Comparison, ...] = (
    Comparison("main_imd", "main effect of IMD",
               {"student_imd": 0.5, "student_takd": 0.5, "student_response": -0.5,
                "student_cmrd": -0.5}, "IMD helps, averaged over CMRD off/on"),
    Comparison("main_cmrd", "main effect of CMRD",
               {"student_cmrd": 0.5, "student_takd": 0.5, "student_response": -0.5,
                "student_imd": -0.5}, "CMRD helps, averaged over IMD off/on"),
    Comparison("interaction", "IMD × CMRD interaction",
               {"student_takd": 1.0, "student_imd": -1.0, "student_cmrd": -1.0,
                "student_response": 1.0}, "IMD and CMRD together gain more than apart"),
)
# The paper's claim: TAKD > CMKD > no distillation, and the spatial cues add to IMD.
CLAIM_KEYS = ("student_takd-student_cmkd", "student_cmkd-student_none",
              "student_takd-student_imd")


def selected_rows(keys: Sequence[str] | None) -> tuple[AblationRow, ...]:
    """Rows asked for plus the teacher and TA that the students' presets distil from."""
    if not keys:
        return ROWS
    unknown = [k for k in keys if k not in ROW_KEYS]
    if unknown:
        raise ConfigError(f"--rows: unknown row(s) {unknown}; choose from {list(ROW_KEYS)}")
    wanted = set(keys)
    for row in ROWS:
        if row.key in keys and row.distill is not None:
            preset = distill_preset(row.distill)  # type: ignore[arg-type]
            wanted |= {"teacher"} if preset.needs_teacher else set()
            wanted |= {"ta"} if preset.needs_assistant else set()
    return tuple(row for row in ROWS if row.key in wanted)
