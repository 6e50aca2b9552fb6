"""Checkpoints: pickle-free round trips, atomic overwrite and errors that name path and key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from monotakd_ros import __version__
from monotakd_ros.errors import CheckpointError
from monotakd_ros.model_io.checkpoint import (
    META_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    CheckpointMeta,
    TrainState,
    decode_plain,
    encode_plain,
    load_checkpoint_meta,
    load_model_weights,
    load_optimizer_state,
    load_train_state,
    save_checkpoint,
)
from monotakd_ros.model_io.input_spec import InputSpec
from monotakd_ros.training.rng_state import capture_rng_state, restore_rng_state


class TinyNet(nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, hidden, 3, padding=1)
        self.norm = nn.BatchNorm2d(hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))  # (B, hidden)
        return self.head(features)


def trained(steps: int = 3, seed: int = 0) -> tuple[TinyNet, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = TinyNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(steps):
        loss = model(torch.randn(4, 3, 6, 6)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def make_meta(**changes: object) -> CheckpointMeta:
    base = dict(stage="student", model_config={"trunk": "resnet18", "channels": [64, 128]},
                input_spec=InputSpec(input_hw=(96, 320), class_names=("Car", "Cyclist")),
                anchors=[{"class": "Car", "lwh": [3.9, 1.6, 1.56], "bottom_z": -1.78}],
                step=120, epoch=3, metrics={"car_ap3d_moderate": 21.5})
    base.update(changes)
    return CheckpointMeta(**base)  # type: ignore[arg-type]


def test_weights_and_meta_round_trip(tmp_path: Path) -> None:
    model, _ = trained()
    meta = make_meta()
    path = save_checkpoint(tmp_path / "ckpt", model, meta)
    assert sorted(p.name for p in path.iterdir()) == [META_FILE, MODEL_FILE]
    loaded_meta = load_checkpoint_meta(path)
    digest = hashlib.sha256((path / MODEL_FILE).read_bytes()).hexdigest()
    assert loaded_meta.weights_sha256 == digest
    assert dataclasses.replace(loaded_meta, weights_sha256="") == meta
    assert loaded_meta.class_names == ("Car", "Cyclist")
    assert loaded_meta.code_version == __version__
    assert json.loads((path / META_FILE).read_text())["input_spec"]["std"] == list(
        meta.input_spec.std)
    fresh = TinyNet()
    assert load_model_weights(path, fresh) == ([], [])
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    x = torch.randn(2, 3, 6, 6)
    model.eval()
    fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_single_file_checkpoint_carries_meta_in_header(tmp_path: Path) -> None:
    model, optimizer = trained()
    path = save_checkpoint(tmp_path / "student.safetensors", model, make_meta())
    assert path.is_file()
    assert load_checkpoint_meta(path) == make_meta()
    fresh = TinyNet()
    load_model_weights(path, fresh)
    assert torch.equal(fresh.head.weight, model.head.weight)
    with pytest.raises(CheckpointError, match="single-file checkpoint holds weights only"):
        save_checkpoint(tmp_path / "x.safetensors", model, make_meta(), optimizer=optimizer)


def test_optimizer_state_round_trip_continues_identically(tmp_path: Path) -> None:
    model, optimizer = trained(steps=4)
    save_checkpoint(tmp_path / "ckpt", model, make_meta(), optimizer=optimizer)
    model2 = TinyNet()
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=1.0)
    load_model_weights(tmp_path / "ckpt", model2)
    load_optimizer_state(tmp_path / "ckpt", optimizer2)
    saved, loaded = optimizer.state_dict(), optimizer2.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]  # lr, betas tuple, flags
    assert saved["state"].keys() == loaded["state"].keys()
    for index, state in saved["state"].items():
        for name, value in state.items():
            assert torch.equal(loaded["state"][index][name], value), (index, name)
    # One more identical step on both gives identical parameters.
    batch = torch.randn(4, 3, 6, 6)
    for net, opt in ((model, optimizer), (model2, optimizer2)):
        opt.zero_grad()
        net(batch).pow(2).mean().backward()
        opt.step()
    for (key, a), b in zip(model.state_dict().items(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_optimizer_with_other_groups_is_rejected(tmp_path: Path) -> None:
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ckpt", model, make_meta(), optimizer=optimizer)
    other = torch.optim.AdamW([{"params": [model.conv.weight]},
                               {"params": [p for n, p in model.named_parameters()
                                           if n != "conv.weight"]}])
    with pytest.raises(CheckpointError, match=r"optimizer\.safetensors.*parameters per group"):
        load_optimizer_state(tmp_path / "ckpt", other)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        save_checkpoint(tmp_path / "bare", model, make_meta())
        load_optimizer_state(tmp_path / "bare", optimizer)


def test_rng_state_round_trip_reproduces_random_numbers(tmp_path: Path) -> None:
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(11)
    torch.rand(3)  # advance the generators away from their seeds
    model, optimizer = trained(steps=1, seed=5)
    state = TrainState(step=17, epoch=2, rng=capture_rng_state(),
                       scheduler={"last_epoch": 17, "base_lrs": [0.01], "pair": (1, 2)},
                       extra={"best_ap": 12.5})
    save_checkpoint(tmp_path / "ckpt", model, make_meta(), optimizer, state)
    expected = (torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)])
    torch.rand(100)
    np.random.rand(100)
    random.random()
    loaded = load_train_state(tmp_path / "ckpt")
    assert (loaded.step, loaded.epoch, loaded.extra) == (17, 2, {"best_ap": 12.5})
    assert loaded.scheduler == {"last_epoch": 17, "base_lrs": [0.01], "pair": (1, 2)}
    restore_rng_state(loaded.rng)
    assert torch.equal(torch.rand(5), expected[0])
    assert np.array_equal(np.random.rand(5), expected[1])
    assert [random.random() for _ in range(5)] == expected[2]


def test_train_state_accepts_a_plain_mapping(tmp_path: Path) -> None:
    model, optimizer = trained(steps=1)
    save_checkpoint(tmp_path / "ckpt", model, make_meta(), optimizer, {"step": 4, "epoch": 1})
    assert load_train_state(tmp_path / "ckpt") == TrainState(step=4, epoch=1)


def test_plain_encoding_keeps_types() -> None:
    value = {"ints": {0: (1, 2.5)}, "array": np.arange(6, dtype=np.uint32).reshape(2, 3),
             "tensor": torch.tensor([1.5, -2.0], dtype=torch.bfloat16), "none": None,
             "__odd": [True, "x"]}
    tensors: dict[str, torch.Tensor] = {}
    external = encode_plain(value, tensors, "root")
    assert list(tensors) == ["root.tensor"]
    for encoded, store in ((external, tensors), (encode_plain(value, None, "root"), {})):
        decoded = decode_plain(json.loads(json.dumps(encoded)), store, Path("x.json"))
        assert decoded["ints"] == {0: (1, 2.5)}
        assert decoded["array"].dtype == np.uint32
        assert np.array_equal(decoded["array"], value["array"])
        assert torch.equal(decoded["tensor"], value["tensor"])
        assert decoded["none"] is None and decoded["__odd"] == [True, "x"]
    with pytest.raises(CheckpointError, match=r"root\.bad: cannot store a value of type object"):
        encode_plain({"bad": object()}, None, "root")


def test_overwrite_replaces_atomically_and_leaves_no_temporaries(tmp_path: Path) -> None:
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ckpt", model, make_meta(step=1), optimizer)
    save_checkpoint(tmp_path / "ckpt", model, make_meta(step=2))
    # ckpt is a link to the one version left; the previous version is gone.
    version = (tmp_path / "ckpt").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt", version.name])
    assert version.name.startswith(".ckpt.v-") and (tmp_path / "ckpt").is_symlink()
    assert not (tmp_path / "ckpt" / OPTIMIZER_FILE).exists()
    assert load_checkpoint_meta(tmp_path / "ckpt").step == 2


def test_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    model, _ = trained()
    save_checkpoint(tmp_path / "ckpt", model, make_meta(step=1))
    with pytest.raises(CheckpointError, match="metadata is not plain JSON"):
        save_checkpoint(tmp_path / "ckpt", model, make_meta(model_config={"x": object()}))
    assert load_checkpoint_meta(tmp_path / "ckpt").step == 1
    version = (tmp_path / "ckpt").resolve().name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt", version])


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=rf"{missing}.*not found"):
        load_model_weights(missing, TinyNet())
    with pytest.raises(CheckpointError, match=rf"{missing}.*not found"):
        load_checkpoint_meta(missing)


def test_truncated_weights_give_checkpoint_error_with_path(tmp_path: Path) -> None:
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ckpt", model, make_meta())
    weights = path / MODEL_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 40])
    with pytest.raises(CheckpointError, match=rf"{weights}: corrupt or unreadable"):
        load_model_weights(path, TinyNet())
    weights.write_bytes(b"\x05")
    with pytest.raises(CheckpointError, match=rf"{weights}: corrupt or unreadable"):
        load_model_weights(path, TinyNet())


def test_bad_json_names_file_and_line(tmp_path: Path) -> None:
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ckpt", model, make_meta())
    meta_file = path / META_FILE
    valid = json.loads(meta_file.read_text())
    meta_file.write_text('{\n  "stage": "student",\n  oops\n}')
    with pytest.raises(CheckpointError, match=rf"{meta_file}: invalid JSON at line 3"):
        load_checkpoint_meta(path)
    meta_file.write_text(json.dumps({**valid, "colour": "red"}))
    with pytest.raises(CheckpointError, match=r"unknown key\(s\) \['colour'\]"):
        load_checkpoint_meta(path)
    meta_file.write_text(json.dumps({**valid, "step": "many"}))
    with pytest.raises(CheckpointError, match=rf"{meta_file}\.step: expected an integer"):
        load_checkpoint_meta(path)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ckpt", model, make_meta(format_version=99))
    with pytest.raises(CheckpointError, match="format_version 99 is newer"):
        load_checkpoint_meta(path)


def test_shape_mismatch_names_the_key(tmp_path: Path) -> None:
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ckpt", model, make_meta())
    wider = TinyNet(hidden=16)
    before = wider.head.weight.clone()
    with pytest.raises(CheckpointError, match=r"conv\.weight: checkpoint \(8, 3, 3, 3\) vs "
                                              r"model \(16, 3, 3, 3\)"):
        load_model_weights(path, wider)
    assert torch.equal(wider.head.weight, before)  # nothing was half-loaded


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    model, _ = trained()
    path = save_checkpoint(tmp_path / "ckpt", model, make_meta())
    extended = nn.Sequential()
    extended.add_module("conv", model.conv)
    extended.add_module("extra", nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"missing keys \[extra\.bias, extra\.weight\]; "
                                              r"unexpected keys \[head\.bias, head\.weight"):
        load_model_weights(path, extended)
    missing, unexpected = load_model_weights(path, extended, strict=False)
    assert missing == ["extra.bias", "extra.weight"]
    assert "head.weight" in unexpected and "norm.running_mean" in unexpected


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    tied = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    tied[1].weight = tied[0].weight
    save_checkpoint(tmp_path / "tied", tied, make_meta())
    fresh = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    load_model_weights(tmp_path / "tied", fresh)
    assert torch.equal(fresh[1].weight, tied[0].weight)
