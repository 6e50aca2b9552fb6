"""Checkpoint writes survive a kill at every point; bad weights and metadata are refused."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import safetensors
import torch
from test_checkpoint import make_meta, trained

from monotakd_ros.errors import CheckpointError
from monotakd_ros.model_io import atomic
from monotakd_ros.model_io import checkpoint as ckpt
from monotakd_ros.model_io.checkpoint import (
    META_FILE,
    MODEL_FILE,
    TrainState,
    load_checkpoint_meta,
    load_model_weights,
    recover_directory,
    save_checkpoint,
)
from monotakd_ros.resources import SOURCE_ROOT


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (cleanup is switched off as well)."""


def save(path: Path, step: int) -> Path:
    model, optimizer = trained(steps=1, seed=step)
    return save_checkpoint(path, model, make_meta(step=step), optimizer,
                           TrainState(step=step, epoch=0))


def kill_after(count: int) -> Callable[..., None]:
    calls = []

    def hook(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) >= count:
            raise Killed

    return hook


def patch_os(monkeypatch: pytest.MonkeyPatch, **functions: Callable[..., None]) -> None:
    """Replace ``os`` functions as model_io.atomic sees them (and nowhere else)."""
    monkeypatch.setattr(atomic, "os", SimpleNamespace(**{**vars(os), **functions}))


def _kill_in_write(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ckpt._save_tensors  # model written, optimizer not: a partial version folder

    def save_then_die(tensors: dict, target: Path, header: dict) -> None:
        if target.name != MODEL_FILE:
            raise Killed
        original(tensors, target, header)

    monkeypatch.setattr(ckpt, "_save_tensors", save_then_die)


def _kill_before_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "fsync_tree", kill_after(1))


def _kill_before_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_os(monkeypatch, replace=kill_after(1))  # the link exists, not yet moved


def _kill_after_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    original = atomic.fsync_path

    def die_on_parent(path: Path) -> None:
        if not path.name.startswith("."):  # the parent, fsynced right after the switch
            raise Killed
        original(path)

    monkeypatch.setattr(atomic, "fsync_path", die_on_parent)


def _kill_in_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "remove_stale_versions", kill_after(1))


KILL_POINTS = {
    # name: (injector, step that `last` must hold afterwards)
    "while_writing_files": (_kill_in_write, 1),
    "before_fsync": (_kill_before_fsync, 1),
    "between_link_and_switch": (_kill_before_switch, 1),
    "after_switch_before_parent_fsync": (_kill_after_switch, 2),
    "before_cleanup": (_kill_in_cleanup, 2),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_kill_at_any_point_leaves_a_complete_checkpoint(point: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    last = tmp_path / "last"
    save(last, 1)
    inject, expected_step = KILL_POINTS[point]
    with monkeypatch.context() as patch:
        patch.setattr(atomic, "_remove", lambda path: None)  # a killed process cleans nothing
        inject(patch)
        with pytest.raises(Killed):
            save(last, 2)
    found = recover_directory(last)
    assert found is not None and load_checkpoint_meta(found).step == expected_step
    load_model_weights(found, trained(steps=0)[0])
    # The next save removes every leftover: one link, one version.
    save(last, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last", last.resolve().name])
    assert load_checkpoint_meta(last).step == 3


def test_kill_while_adopting_an_older_plain_folder_is_recovered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    last = tmp_path / "last"
    save(tmp_path / "old", 1)
    shutil.copytree((tmp_path / "old").resolve(), last)  # a real folder, as older code wrote
    with monkeypatch.context() as patch:
        patch.setattr(atomic, "_remove", lambda path: None)
        patch_os(patch, symlink=kill_after(1))  # after the folder was moved aside
        with pytest.raises(Killed):
            save(last, 2)
    assert not last.exists()
    adopted = [p for p in tmp_path.iterdir() if p.name.startswith(".last.v-adopted-")]
    assert len(adopted) == 1 and load_checkpoint_meta(adopted[0]).step == 1
    # The new version was complete and flushed before the kill: it is the newest.
    assert load_checkpoint_meta(recover_directory(last)).step == 2
    save(last, 3)
    assert last.is_symlink() and load_checkpoint_meta(last).step == 3


def test_partial_temporaries_of_the_old_scheme_are_ignored_and_cleaned(tmp_path: Path) -> None:
    last = tmp_path / "last"
    save(last, 4)
    partial = tmp_path / ".last.tmp-99-deadbeef"
    partial.mkdir()
    shutil.copy(last / MODEL_FILE, partial / MODEL_FILE)  # killed before meta.json was written
    complete_old = tmp_path / ".last.old-99-cafe"  # moved aside, the new one not renamed yet
    version = last.resolve()
    shutil.copytree(version, complete_old)
    last.unlink()
    shutil.rmtree(version)
    assert recover_directory(last) == complete_old
    save(last, 5)
    assert not partial.exists() and not complete_old.exists()


@pytest.mark.parametrize("failure", [
    safetensors.SafetensorError("Error while serializing: IoError(No space left on device)"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_disk_full_is_a_clear_error_and_keeps_the_previous_checkpoint(
        failure: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    last = tmp_path / "last"
    save(last, 1)

    def full_disk(*args: object) -> None:
        raise failure

    monkeypatch.setattr(ckpt, "_save_tensors", full_disk)
    weights_kib = sum(t.numel() * t.element_size()
                      for t in trained(steps=0)[0].state_dict().values()) / 1024
    with pytest.raises(CheckpointError, match=rf"{last}: cannot write checkpoint of "
                       rf"{weights_kib:.1f} KiB \(\d+\.\d MiB free on {tmp_path}\): .*No "
                       "space left on device"):
        save(last, 2)
    assert load_checkpoint_meta(last).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last", last.resolve().name])


def test_metadata_of_other_weights_with_the_same_shapes_is_refused(tmp_path: Path) -> None:
    first = save(tmp_path / "a", 1)
    second = save(tmp_path / "b", 2)  # other values, same shapes
    (first / META_FILE).write_text((second / META_FILE).read_text())
    with pytest.raises(CheckpointError, match=r"a/meta\.json: weights_sha256 .* does not match "
                       r".*model\.safetensors .*belongs to other weights"):
        load_model_weights(first, trained(steps=0)[0])
    assert recover_directory(first) is None  # not a complete checkpoint either


def test_non_finite_weights_are_refused_naming_the_key(tmp_path: Path) -> None:
    model, _ = trained(steps=1)
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    path = save_checkpoint(tmp_path / "nan", model, make_meta())
    with pytest.raises(CheckpointError, match=r"non-finite weights \(NaN or inf\) in "
                       r"\[head\.bias\]"):
        load_model_weights(path, trained(steps=0)[0])


def test_legacy_metadata_without_hash_loads_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = save(tmp_path / "old", 1)
    meta = json.loads((path / META_FILE).read_text())
    del meta["weights_sha256"]
    (path / META_FILE).write_text(json.dumps(meta))
    model = trained(steps=0)[0]
    assert load_model_weights(path, model) == ([], [])
    assert "has no weights_sha256" in caplog.text


def test_shipped_student_metadata_names_its_weights() -> None:
    shipped = SOURCE_ROOT / "models" / "default_student"
    meta = load_checkpoint_meta(shipped)
    assert meta.weights_sha256 == hashlib.sha256((shipped / MODEL_FILE).read_bytes()).hexdigest()
    card = (shipped / "MODEL_CARD.md").read_text()
    assert meta.weights_sha256 in card


def test_orphans_go_after_a_resume_but_never_the_checkpoint_it_resumed_from(
        tmp_path: Path) -> None:
    save(tmp_path / "last", 1)
    save(tmp_path / "step_0000001", 1)
    (tmp_path / ".step_0000002.v-1-aa").mkdir()  # a kill mid-write of step 2
    os.symlink(".step_0000002.v-1-aa", tmp_path / ".step_0000002.link-1-aa")
    (tmp_path / ".best.tmp-1-bb").mkdir()  # the earlier scheme's partial temporary
    source = tmp_path / ".last.old-1-cc"  # resumed from this one (complete, not linked)
    shutil.copytree((tmp_path / "last").resolve(), source)
    removed = atomic.remove_orphans(tmp_path, keep=source)
    assert sorted(p.name for p in removed) == [
        ".best.tmp-1-bb", ".step_0000002.link-1-aa", ".step_0000002.v-1-aa"]
    linked = [(tmp_path / name).resolve().name for name in ("last", "step_0000001")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["last", "step_0000001", *linked, source.name])
