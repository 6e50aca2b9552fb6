"""Two-process DDP on the CPU (gloo): ranks see disjoint frames yet keep identical weights."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.distill.config import DetectionLossWeights
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.config import load_train_config
from monotakd_ros.training.data_loading import (
    build_train_dataset,
    build_train_loader,
    input_spec_for,
)
from monotakd_ros.training.distributed import init_distributed, shutdown_distributed
from monotakd_ros.training.rng_state import seed_everything
from monotakd_ros.training.run_state import RunDir
from monotakd_ros.training.stages import build_stage
from monotakd_ros.training.trainer import train

WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ddp_worker(rank: int, root: str, port: int, stage_name: str) -> None:
    """One rank: join the group through the torchrun variables, train, dump its weights."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "WORLD_SIZE": str(WORLD_SIZE), "OMP_NUM_THREADS": "1"})
    torch.set_num_threads(1)
    base = Path(root)
    cfg = load_train_config(base / "train.yaml")
    model_cfg = load_model_config(base / "model.yaml")
    ctx = init_distributed("cpu")
    # Different seeds per rank would give different initial weights without DDP's broadcast.
    seed_everything(cfg.seed + 100 * rank)
    spec = input_spec_for(model_cfg)
    stage = build_stage(stage_name, model_cfg, spec, cfg.detection)
    data = build_train_loader(build_train_dataset(base / "kitti", "train", spec), cfg, ctx)
    data.sampler.set_position(0, 0)
    first_epoch = list(iter(data.sampler))
    summary = train(stage, data, cfg, RunDir(base / "run"), ctx)
    # Parameters only: BN running stats are per rank between DDP's buffer broadcasts.
    state = {k: v.detach().contiguous() for k, v in stage.model.named_parameters()}
    safetensors.torch.save_file(state, str(base / f"rank{rank}.safetensors"))
    (base / f"rank{rank}.json").write_text(json.dumps(
        {"indices": first_epoch, "step": summary.step, "world": ctx.world_size}))
    shutdown_distributed()


@pytest.mark.parametrize("stage_name", ["teacher", "ta"])
def test_two_gloo_ranks_keep_identical_parameters(tmp_path: Path, stage_name: str) -> None:
    write_tiny_kitti(tmp_path / "kitti", num_train=8, num_val=1)
    write_yaml(tmp_path / "model.yaml", TINY_MODEL)
    write_yaml(tmp_path / "train.yaml", {**TINY_TRAIN, "max_steps": 3, "grad_accum": 2,
                                         "ckpt_interval": 0})
    mp.spawn(ddp_worker, args=(str(tmp_path), free_port(), stage_name), nprocs=WORLD_SIZE,
             join=True)
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert [r["world"] for r in records] == [2, 2]
    assert [r["step"] for r in records] == [3, 3]
    # DistributedSampler shards: each rank gets half of the 8 frames, no frame twice.
    shards = [set(r["indices"]) for r in records]
    assert len(shards[0]) == len(shards[1]) == 4 and not shards[0] & shards[1]
    weights = [safetensors.torch.load_file(str(tmp_path / f"rank{r}.safetensors"))
               for r in range(WORLD_SIZE)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    # Rank 0 alone wrote the run's checkpoint and logs; the loss log has one row per step.
    run = tmp_path / "run"
    checkpoint = safetensors.torch.load_file(str(run / "checkpoints" / "last" /
                                                 "model.safetensors"))
    assert all(torch.equal(checkpoint[k], weights[0][k]) for k in weights[0])
    assert len((run / "train_log.csv").read_text().strip().splitlines()) == 1 + 3
    # Training moved the weights away from rank 0's initialisation.
    seed_everything(0)
    initial = build_stage(stage_name, load_model_config(tmp_path / "model.yaml"),
                          input_spec_for(load_model_config(tmp_path / "model.yaml")),
                          DetectionLossWeights()).model.state_dict()
    assert any(not torch.equal(initial[k], weights[0][k]) for k in weights[0])
