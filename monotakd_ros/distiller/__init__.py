"""The distillation runner: frames from bags or live topics -> student updates and checkpoints."""
