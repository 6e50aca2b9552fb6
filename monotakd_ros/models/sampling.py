"""``grid_sample`` of one frame spread over the CPU's threads, with the same values.

PyTorch's CPU ``grid_sample`` kernels run one thread per batch item, so a single frame (the
detector's case) samples on one core. Here the sampling grid is cut along one of its spatial
dimensions into one chunk per thread, the chunks are sampled as a batch of views of the same
input (no copy) and joined. Every output value is computed exactly as before: bit-identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OUTSIDE = -2.0  # a normalised coordinate outside [-1, 1]: samples zeros, for either corner mode


def grid_sample_threads(source: torch.Tensor, grid: torch.Tensor, split_dim: int,
                        align_corners: bool) -> torch.Tensor:
    """``F.grid_sample`` (bilinear, zero padding) of a 4-D or 5-D ``source`` at ``grid``.

    ``split_dim`` (1 … grid.dim() - 2) is the grid dimension cut into chunks. Batches of more
    than one item, other devices and a single thread go straight to ``F.grid_sample``.
    """
    threads = torch.get_num_threads()
    if not 1 <= split_dim <= grid.dim() - 2:
        raise ValueError(f"split_dim must be a spatial grid dimension (1..{grid.dim() - 2}), "
                         f"got {split_dim}")
    size = grid.shape[split_dim]
    if source.device.type != "cpu" or source.shape[0] != 1 or threads < 2 or size < threads:
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=align_corners)
    chunk = -(-size // threads)
    pad = chunk * threads - size
    if pad:
        pad_widths = [0, 0] * (grid.dim() - 1 - split_dim) + [0, pad]
        grid = F.pad(grid, pad_widths, value=OUTSIDE)
    shape = grid.shape
    chunks = grid.reshape(*shape[:split_dim], threads, chunk, *shape[split_dim + 1:])
    chunks = chunks.movedim(split_dim, 0).reshape(threads, *shape[1:split_dim], chunk,
                                                  *shape[split_dim + 1:])
    sampled = F.grid_sample(source.expand(threads, *source.shape[1:]), chunks, mode="bilinear",
                            padding_mode="zeros", align_corners=align_corners)
    # (threads, C, ..., chunk, ...) → (1, C, ..., threads · chunk, ...)
    joined = sampled.movedim(0, split_dim).reshape(1, *sampled.shape[1:split_dim + 1],
                                                   threads * chunk, *sampled.shape[split_dim + 2:])
    return joined.narrow(split_dim + 1, 0, size) if pad else joined
