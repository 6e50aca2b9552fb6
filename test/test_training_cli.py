"""monotakd-train end to end: run folder contents, CSV/PNG logs, errors as exit codes, torchrun."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.training.cli import main
from monotakd_ros.training.logging_utils import CsvLog, plot_loss_curves, read_csv_rows
from monotakd_ros.training.run_state import RunDir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    return {"data": write_tiny_kitti(root / "kitti", num_train=4, num_val=2),
            "model": write_yaml(root / "model.yaml", TINY_MODEL),
            "train": write_yaml(root / "train.yaml", {**TINY_TRAIN, "max_steps": 4,
                                                      "val_interval": 2, "ckpt_interval": 2})}


def args_for(env: dict[str, Path], stage: str, out: Path, *extra: str) -> list[str]:
    return [stage, "--model-config", str(env["model"]), "--train-config", str(env["train"]),
            "--data", str(env["data"]), "--out", str(out), *extra]


def test_teacher_then_student_through_the_cli(env: dict[str, Path], tmp_path: Path) -> None:
    assert main(args_for(env, "teacher", tmp_path / "teacher")) == 0
    assert main(args_for(env, "ta", tmp_path / "ta", "--seed", "3")) == 0
    run = RunDir(tmp_path / "teacher")
    # Each name is a link to one hidden version folder; no other leftovers stay behind.
    names = {p.name for p in run.checkpoints.iterdir() if not p.name.startswith(".")}
    assert names == {"step_0000002", "step_0000004", "last", "best"}
    versions = {(run.checkpoints / name).resolve().name for name in names}
    assert {p.name for p in run.checkpoints.iterdir()} == names | versions
    assert len(versions) == 4 and all(v.startswith(".") and ".v-" in v for v in versions)
    assert [row["step"] for row in read_csv_rows(run.train_csv)] == ["1", "2", "3", "4"]
    assert [row["step"] for row in read_csv_rows(run.val_csv)] == ["2", "4"]
    assert run.loss_png.read_bytes()[:4] == b"\x89PNG"
    recorded = json.loads((run.root / "run_config.json").read_text())
    assert recorded["stage"] == "teacher" and recorded["train_config"]["max_steps"] == 4
    assert (run.root / "train.log").stat().st_size > 0
    student = tmp_path / "student"
    code = main(args_for(env, "student", student, "--teacher", str(run.last), "--assistant",
                         str(RunDir(tmp_path / "ta").best), "--distill", "imd",
                         "--max-steps", "2"))
    assert code == 0
    header = read_csv_rows(RunDir(student).train_csv)[0]
    assert "imd" in header and "cmrd" not in header and "resp_cls" not in header


def test_errors_become_exit_code_2_with_the_reason_logged(
        env: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(args_for(env, "student", tmp_path / "s")) == 2
    assert "need the LiDAR teacher; pass --teacher CKPT" in caplog.text
    assert main(args_for(env, "teacher", tmp_path / "t", "--unlabeled-drives",
                         str(tmp_path))) == 2
    assert "only the student stage learns from unlabelled frames" in caplog.text
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(args_for(env, "teacher", blocker / "run")) == 2  # before any work is done
    assert f"--out {blocker / 'run'}: not writable" in caplog.text


def test_unwritable_checkpoint_folder_is_found_at_start(env: dict[str, Path], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.checkpoints.write_text("a file where the checkpoint folder goes")
    assert main(args_for(env, "teacher", run.root)) == 2
    assert f"checkpoint folder {run.checkpoints}: not writable" in caplog.text
    assert not run.train_csv.exists()  # no step was taken


def _parameters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Learned tensors of a checkpoint (BatchNorm statistics move even without a step)."""
    tensors = load_file(str(checkpoint / "model.safetensors"))
    return {k: v for k, v in tensors.items() if "running_" not in k and "num_batches" not in k}


def test_init_from_starts_a_new_run_from_a_checkpoint(env: dict[str, Path],
                                                      tmp_path: Path) -> None:
    source = tmp_path / "source"
    assert main(args_for(env, "teacher", source)) == 0
    frozen = write_yaml(tmp_path / "frozen.yaml", {**TINY_TRAIN, "lr": 1e-12,
                                                   "schedule": "constant", "max_steps": 1})

    def one_step(out: Path, *extra: str) -> dict[str, torch.Tensor]:
        argv = args_for(env, "teacher", out, *extra)
        argv[argv.index("--train-config") + 1] = str(frozen)
        assert main(argv) == 0
        return _parameters(RunDir(out).last)

    start = _parameters(RunDir(source).last)
    fine_tuned = one_step(tmp_path / "tuned", "--init-from", str(RunDir(source).last))
    from_scratch = one_step(tmp_path / "scratch")
    assert all(torch.allclose(fine_tuned[k], start[k], atol=1e-8) for k in start)
    assert not all(torch.allclose(from_scratch[k], start[k], atol=1e-3) for k in start)


def test_init_from_refuses_another_stage_and_resume(
        env: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(args_for(env, "ta", tmp_path / "ta")) == 0
    ta_last = str(RunDir(tmp_path / "ta").last)
    assert main(args_for(env, "teacher", tmp_path / "t", "--init-from", ta_last)) == 2
    assert "is a 'ta' checkpoint, expected a 'teacher' checkpoint" in caplog.text
    assert main(args_for(env, "ta", tmp_path / "ta", "--init-from", ta_last,
                         "--resume")) == 2
    assert "--init-from starts a new run; --resume continues one" in caplog.text


def test_csv_log_extends_columns_and_truncates_on_resume(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "log.csv")
    log.append(1, {"total": 2.0})
    log.append(2, {"total": 1.5, "imd": 0.25})  # a new column rewrites the header once
    log.append(3, {"total": 1.0, "imd": 0.125})
    with (tmp_path / "log.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows == [["step", "total", "imd"], ["1", "2", ""], ["2", "1.5", "0.25"],
                    ["3", "1", "0.125"]]
    CsvLog(tmp_path / "log.csv").truncate_after(3)
    assert [r["step"] for r in read_csv_rows(tmp_path / "log.csv")] == ["1", "2"]
    assert plot_loss_curves(tmp_path / "log.csv", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_loss_curves(tmp_path / "missing.csv", tmp_path / "none.png")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(env: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(free_port()), "-m", "monotakd_ros.training.cli",
               *args_for(env, "teacher", out, "--max-steps", "3", "--device", "cpu")]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Own session: on a timeout the whole group (torchrun and both ranks) is killed.
    process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("torchrun did not finish within 120 s (a collective left unmatched?)")
    assert process.returncode == 0, stderr[-3000:]
    assert "joined gloo process group: rank 0 of 2" in stderr
    # 4 frames, 2 ranks, batch 2: one step per epoch; rank 0 alone wrote logs and checkpoints,
    # validating at step 2 (in the loop) and 3 (the end) while rank 1 waited for it.
    assert [row["step"] for row in read_csv_rows(RunDir(out).train_csv)] == ["1", "2", "3"]
    assert [row["step"] for row in read_csv_rows(RunDir(out).val_csv)] == ["2", "3"]
    assert RunDir(out).last.is_dir()
