"""Training of the three MonoTAKD stages (teacher, TA, distilled student).

config (TrainConfig) → schedule (LR as a function of the step) → data_loading (resumable,
sharded loaders) → stages (what is trained, with which loss; frozen teacher/TA) → trainer (the
loop) with run_state (checkpoints and exact resume), validation (KITTI AP), logging_utils (CSV and
PNG curves) and distributed (torchrun DDP); runner/cli (``monotakd-train``) and ablation
(``monotakd-ablation``) drive them.
"""
