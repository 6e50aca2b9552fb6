"""Distillation engine and session: bag mode learning, exact resume, bad input, evaluation."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_distill import (
    CLOUD,
    IMAGE,
    INFO,
    bag_frames,
    distiller_config,
    load_distiller_config,
    write_bag,
    write_labelled_drive,
    write_models,
)
from helpers_kitti_raw import kitti_raw_calib, write_synthetic_drive
from test_training_step import NanOnCalls

from monotakd_ros.bags.frame_reader import iter_bag_frames
from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.data.kitti.raw_calib import write_raw_calib
from monotakd_ros.distiller.evaluation import evaluate_bag, evaluate_student
from monotakd_ros.distiller.ledger import FrameLedger, SkipTally
from monotakd_ros.distiller.session import EVAL_RESULTS_FILE, DistillSession
from monotakd_ros.errors import (
    BagError,
    CalibrationError,
    CheckpointError,
    ConfigError,
    DatasetError,
    TrainingError,
)
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.model_io.checkpoint import load_checkpoint_meta
from monotakd_ros.models.config import load_model_config
from monotakd_ros.models.outputs import Detections
from monotakd_ros.training.schedule import learning_rate_at
from monotakd_ros.training.stages import load_trained_stage

DISTILL_TERMS = ("imd", "cmrd", "resp_cls", "resp_box", "resp_dir")
CONFIG_FILE = Path(__file__).resolve().parents[1] / "config" / "distill.yaml"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short synthetic raw drive converted by monotakd-kitti2bag's converter (6 frames)."""
    root = tmp_path_factory.mktemp("bags")
    drive = write_synthetic_drive(root / "raw", num_frames=6, with_tracklets=False)
    return convert_drive_to_bag(drive.drive_dir, root / "six").path


@pytest.fixture(scope="module")
def labelled_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    return convert_drive_to_bag(write_labelled_drive(root / "raw"), root / "bag").path


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_bag_distillation_trains_the_student_alone_and_lowers_every_term(
        models: dict[str, Path], bag: Path, tmp_path: Path) -> None:
    config = distiller_config(models, tmp_path / "run", [bag], passes=50)
    session = DistillSession(config)
    frozen = session.stage.frozen
    teacher_before, ta_before = state_of(frozen.teacher), state_of(frozen.assistant)
    student_before = state_of(session.stage.model)
    session.run_bags(show_bar=False)
    summary = session.finish()

    assert summary.report["frames_used"] == 300 and summary.report["step"] == 300
    for name, value in state_of(frozen.teacher).items():
        assert torch.equal(value, teacher_before[name]), name
    for name, value in state_of(frozen.assistant).items():
        assert torch.equal(value, ta_before[name]), name
    changed = [n for n, v in state_of(session.stage.model).items()
               if v.is_floating_point() and not torch.equal(v, student_before[n])]
    assert len(changed) > 0.9 * len([v for v in student_before.values()
                                     if v.is_floating_point()])
    log = rows(tmp_path / "run" / "train_log.csv")
    assert len(log) == 300
    for term in ("det_cls", "det_box", "det_dir"):  # no labels: the GT terms stay at zero
        assert all(float(r[term]) == 0.0 for r in log)
    for term in (*DISTILL_TERMS, "total"):
        first = np.mean([float(r[term]) for r in log[:30]])
        last = np.mean([float(r[term]) for r in log[-30:]])
        assert first > 0 and last < first, (term, first, last)
    total_first = np.mean([float(r["total"]) for r in log[:30]])
    assert np.mean([float(r["total"]) for r in log[-30:]]) < 0.6 * total_first
    # The final checkpoint loads into a fresh student and holds the trained weights.
    meta = load_checkpoint_meta(summary.checkpoint)
    assert (meta.stage, meta.step) == ("student", 300)
    fresh = load_trained_stage("student", session.stage.model_cfg, session.stage.spec,
                               summary.checkpoint)
    for name, value in state_of(fresh.model).items():
        assert torch.equal(value, state_of(session.stage.model)[name]), name


def test_resumed_run_never_reuses_a_frame_and_matches_an_uninterrupted_run(
        models: dict[str, Path], bag: Path, tmp_path: Path) -> None:
    stamps = [frame.stamp_ns for frame in iter_bag_frames(bag)]
    crashed = DistillSession(distiller_config(models, tmp_path / "run", [bag],
                                              train={"ckpt_interval": 2}))
    for frame in list(iter_bag_frames(bag))[:5]:  # checkpoint at step 4, then a "crash"
        crashed.engine.offer(str(bag.resolve()), frame)
    assert crashed.engine.step == 5

    resumed = DistillSession(distiller_config(models, tmp_path / "run", [bag], resume=True,
                                              train={"ckpt_interval": 2}))
    assert resumed.engine.step == 4 and len(resumed.engine.ledger) == 4
    resumed.run_bags(show_bar=False)
    report = resumed.finish().report
    assert report["frames_used"] == 6 and report["already_used"] == 4
    used = [int(r["stamp_ns"]) for r in rows(tmp_path / "run" / "frames_log.csv")]
    assert used == stamps  # each frame once, in bag order, despite the crash
    assert [int(r["step"]) for r in rows(tmp_path / "run" / "train_log.csv")] == list(
        range(1, 7))

    straight = DistillSession(distiller_config(models, tmp_path / "straight", [bag]))
    straight.run_bags(show_bar=False)
    straight.finish()
    for name, value in state_of(straight.stage.model).items():
        torch.testing.assert_close(state_of(resumed.stage.model)[name], value, rtol=1e-5,
                                   atol=1e-6, msg=name)


def test_unmatched_and_corrupt_frames_are_counted_and_not_fatal(
        models: dict[str, Path], tmp_path: Path) -> None:
    frames = bag_frames(6, seed=1)
    bad = write_bag(tmp_path / "bad", frames, cloud_offsets_ns={2: 300_000_000},
                    corrupt_images=(4,))
    session = DistillSession(distiller_config(models, tmp_path / "run", [bad]))
    session.run_bags(show_bar=False)
    report = session.finish().report
    assert report["skipped"] == {"corrupt_image": 1, "no_point_cloud": 1}
    assert report["frames_used"] == 4 and report["frames_skipped"] == 2
    used = {int(r["stamp_ns"]) for r in rows(tmp_path / "run" / "frames_log.csv")}
    assert used == {frames[i][0] for i in (0, 1, 3, 5)}


def test_bag_without_point_cloud_is_rejected_with_the_topics_found(
        models: dict[str, Path], tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "no_cloud", bag_frames(2), topics=(IMAGE, INFO))
    with pytest.raises(BagError, match=r"PointCloud2 topic.*topics found: .*camera_info"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag]))
    bag = write_bag(tmp_path / "no_info", bag_frames(2), topics=(IMAGE, CLOUD))
    with pytest.raises(BagError, match=r"CameraInfo topic.*topics found: .*pointcloud"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag]))


def test_missing_tf_static_needs_a_calibration_file(models: dict[str, Path],
                                                    tmp_path: Path) -> None:
    frames = bag_frames(3)
    bag = write_bag(tmp_path / "no_tf", frames, topics=(IMAGE, INFO, CLOUD))
    with pytest.raises(BagError, match=r"no /tf_static topic.*set calib_file.*topics found: "
                                      r"/kitti/camera_color_left/camera_info"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag]))
    with pytest.raises(CalibrationError, match="no such file or folder"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag],
                                        calib_file=str(tmp_path / "missing.txt")))
    # A raw date folder with the same rig gives the same extrinsic as /tf_static did.
    date_dir = tmp_path / "2011_09_26"
    date_dir.mkdir()
    write_raw_calib(date_dir, kitti_raw_calib())
    session = DistillSession(distiller_config(models, tmp_path / "run", [bag],
                                              calib_file=str(date_dir)))
    session.run_bags(show_bar=False)
    assert session.finish().report["frames_used"] == 3
    with_tf = write_bag(tmp_path / "with_tf", frames)
    expected = next(iter(iter_bag_frames(with_tf))).T_cam_from_lidar
    got = next(iter(iter_bag_frames(bag, calib=session.calib))).T_cam_from_lidar
    np.testing.assert_allclose(got, expected, atol=1e-6)


def perfect_predictor(batch) -> list[Detections]:  # noqa: ANN001
    """Detections equal to the batch's ground truth, score 1."""
    found = []
    for boxes, classes in zip(batch.gt_boxes_lidar, batch.gt_classes, strict=True):
        keep = classes >= 0
        found.append(Detections(boxes_lidar=boxes[keep], scores=torch.ones(int(keep.sum())),
                                classes=classes[keep]))
    return found


def test_bag_evaluation_scores_ground_truth_as_perfect(models: dict[str, Path],
                                                       labelled_bag: Path) -> None:
    spec = load_checkpoint_meta(models["student"]).input_spec
    perfect = evaluate_bag(perfect_predictor, labelled_bag, spec, torch.device("cpu"))
    assert perfect.num_frames == 3
    # Independently: the bag's ground truth scored against itself, without any conversion.
    truth = [frame.gt_labels for frame in iter_bag_frames(labelled_bag)]
    as_detections = [dataclasses.replace(t, score=np.ones(len(t))) for t in truth]
    ideal = evaluate_kitti(truth, as_detections, classes=("Car",))
    expected = ideal.average_precision("Car", "3d", recall_points=40)
    assert expected[1] > 0  # the car counts at every difficulty
    np.testing.assert_allclose(perfect.ap3d_r40, expected, atol=1e-6)
    blind = evaluate_bag(lambda b: [Detections(torch.zeros(0, 7), torch.zeros(0),
                                               torch.zeros(0, dtype=torch.int64))] * len(b),
                         labelled_bag, spec, torch.device("cpu"))
    assert blind.ap3d_r40 == (0.0, 0.0, 0.0) and "Car AP_R40" in blind.table


def test_eval_data_tables_are_those_of_the_initial_and_final_students(
        models: dict[str, Path], bag: Path, labelled_bag: Path, tmp_path: Path) -> None:
    config = distiller_config(models, tmp_path / "run", [bag], eval_data=str(labelled_bag),
                              student_init=str(models["student"]))
    session = DistillSession(config)
    session.run_bags(show_bar=False)
    summary = session.finish()
    saved = json.loads((tmp_path / "run" / EVAL_RESULTS_FILE).read_text())
    assert saved["before"]["table"] == summary.eval_before["table"]
    cpu = torch.device("cpu")
    for record, checkpoint in ((summary.eval_before, models["student"]),
                               (summary.eval_after, summary.checkpoint)):
        stage = load_trained_stage("student", session.stage.model_cfg, session.stage.spec,
                                   checkpoint)
        expected = evaluate_student(stage, labelled_bag, cpu)
        assert record["table"] == expected.table
        assert record["metrics"] == expected.metrics()


def test_evaluation_data_must_be_a_bag_or_an_object_root(models: dict[str, Path],
                                                         tmp_path: Path) -> None:
    meta = load_checkpoint_meta(models["student"])
    stage = load_trained_stage("student", load_model_config(models["model_config"]),
                               meta.input_spec, models["student"])
    with pytest.raises(DatasetError, match="neither a bag"):
        evaluate_student(stage, tmp_path, torch.device("cpu"))


def test_student_init_weights_are_the_starting_point(models: dict[str, Path], bag: Path,
                                                     tmp_path: Path) -> None:
    config = distiller_config(models, tmp_path / "run", [bag],
                              student_init=str(models["student"]))
    session = DistillSession(config)
    reference = load_trained_stage("student", session.stage.model_cfg, session.stage.spec,
                                   models["student"]).model
    fresh = DistillSession(distiller_config(models, tmp_path / "fresh", [bag], train={
        "seed": 123}))
    started = state_of(session.stage.model)
    for name, value in state_of(reference).items():
        assert torch.equal(started[name], value), name
    assert not all(torch.equal(started[n], v) for n, v in state_of(fresh.stage.model).items())


def test_run_folder_with_a_checkpoint_needs_resume(models: dict[str, Path], bag: Path,
                                                   tmp_path: Path) -> None:
    session = DistillSession(distiller_config(models, tmp_path / "run", [bag], passes=1))
    session.run_bags(show_bar=False)
    session.finish()
    with pytest.raises(ConfigError, match="already has a checkpoint; set resume"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag]))


def test_config_file_and_overrides(models: dict[str, Path], tmp_path: Path) -> None:
    config = load_distiller_config(CONFIG_FILE, out_dir=str(tmp_path), bags=["/b1"],
                                   teacher=str(models["teacher"]),
                                   assistant=str(models["ta"]), train={"batch_size": 4})
    assert config.bags == (Path("/b1"),) and config.student_init is None
    assert config.train.batch_size == 4 and config.train.lr == pytest.approx(2e-4)
    assert config.train.distill == "takd" and config.mode == "bag"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bagz'\]"):
        load_distiller_config(None, out_dir="o", teacher="t", assistant="a", bags=["b"],
                              bagz=["x"])
    with pytest.raises(ConfigError, match="'none' has no distillation term"):
        load_distiller_config(None, out_dir="o", teacher="t", assistant="a", bags=["b"],
                              train={"distill": "none"})
    with pytest.raises(ConfigError, match="bag mode needs at least one bag"):
        load_distiller_config(None, out_dir="o", teacher="t", assistant="a")
    with pytest.raises(ConfigError, match=r"distiller\.bags\[1\]: empty path"):
        load_distiller_config(None, out_dir="o", teacher="t", assistant="a", bags=["b", ""])
    with pytest.raises(ConfigError, match="needs train.max_steps in topic mode"):
        load_distiller_config(None, out_dir="o", teacher="t", assistant="a", mode="topic",
                              train={"schedule": "onecycle"})


def test_ledger_and_skip_counts_round_trip() -> None:
    ledger = FrameLedger()
    ledger.add("/a", 5)
    ledger.add("/a", 7)
    ledger.finish_source("/a")
    ledger.add("/b", 1)
    again = FrameLedger.from_data(json.loads(json.dumps(ledger.to_data())), "ckpt")
    assert again == ledger and len(again) == 3 and again.is_finished("/a")
    again.start_next_pass()
    assert len(again) == 0 and not again.contains("/a", 5) and again.frames_used_total == 3
    tally = SkipTally()
    tally.add("no_point_cloud", 2)
    tally.close_source()
    tally.add("corrupt_image")
    data = tally.to_data()
    # A re-read bag recounts its own skips; a live stream cannot, so it keeps them.
    assert SkipTally.from_data(data, "c", keep_open=False).totals() == {"no_point_cloud": 2}
    assert SkipTally.from_data(data, "c", keep_open=True).totals() == {
        "corrupt_image": 1, "no_point_cloud": 2}
    with pytest.raises(CheckpointError, match="ckpt: unreadable frame ledger"):
        FrameLedger.from_data({"pass_index": 0}, "ckpt")



def test_resume_survives_a_crash_in_the_middle_of_a_checkpoint_swap(
        models: dict[str, Path], bag: Path, tmp_path: Path) -> None:
    session = DistillSession(distiller_config(models, tmp_path / "run", [bag],
                                              train={"max_steps": 3}))
    session.run_bags(show_bar=False)
    session.finish()
    last = tmp_path / "run" / "checkpoints" / "last"
    # What the earlier two-rename save left when killed between moving `last` aside and the
    # new rename: only a hidden complete copy.
    last.rename(last.parent / ".last.old-1234-abcd")
    with pytest.raises(ConfigError, match=r"checkpoints: this run folder already has a"):
        DistillSession(distiller_config(models, tmp_path / "run", [bag]))
    resumed = DistillSession(distiller_config(models, tmp_path / "run", [bag], resume=True))
    assert resumed.engine.step == 3 and len(resumed.engine.ledger) == 3
    resumed.run_bags(show_bar=False)
    assert resumed.finish().report["frames_used"] == 6
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        DistillSession(distiller_config(models, tmp_path / "other", [bag], resume=True))


def test_nan_steps_are_skipped_counted_and_abort_after_n_in_a_row(
        models: dict[str, Path], bag: Path, tmp_path: Path) -> None:
    session = DistillSession(distiller_config(models, tmp_path / "run", [bag],
                                              train={"max_nonfinite_steps": 2}))
    engine, source = session.engine, str(bag.resolve())
    wrapper = NanOnCalls(session.stage.loss_module, session.stage.model, nan_calls={2})
    session.stage.loss_module = wrapper
    frames = list(iter_bag_frames(bag))
    for frame in frames[:3]:
        engine.offer(source, frame)
    assert engine.step == 2 and len(wrapper.seen) == 3
    for name, value in wrapper.seen[1].items():  # the NaN step moved no weight
        assert torch.equal(value, wrapper.seen[2][name]), name
    assert engine.report()["skipped"] == {"nonfinite_loss": 1}
    assert engine.stepper.nonfinite_total == 1
    wrapper.nan_calls = {4, 5}
    engine.offer(source, frames[3])
    with pytest.raises(TrainingError, match=r"2 steps in a row \(up to step 3\)"):
        engine.offer(source, frames[4])


def test_unwritable_out_dir_is_refused_before_any_work(models: dict[str, Path], bag: Path,
                                                       tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"out_dir {blocker / 'run'}: not writable"):
        DistillSession(distiller_config(models, blocker / "run", [bag]))


def test_engine_steps_follow_the_trainers_schedule_to_its_horizon(
        models: dict[str, Path], bag: Path, tmp_path: Path) -> None:
    """The engine runs the trainer's loop body: LR from the same schedule, clamped at the end."""
    session = DistillSession(distiller_config(
        models, tmp_path / "run", [bag], passes=2,
        train={"max_steps": 0, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1}))
    session.engine.horizon_steps = 4
    session.run_bags(show_bar=False)
    log = rows(tmp_path / "run" / "train_log.csv")
    lrs = [float(r["lr"]) for r in log]
    cfg = session.engine.train
    expected = [learning_rate_at(min(step, 3), 4, cfg) for step in range(len(log))]
    assert len(log) == 12 and lrs == pytest.approx(expected, rel=1e-6)
    assert lrs[:5] == pytest.approx([5e-4, 1e-3, 1e-3, 5.5e-4, 5.5e-4])
