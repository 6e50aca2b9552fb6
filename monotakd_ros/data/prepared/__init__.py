"""Prepared (cached) training data: a KITTI split at network input size, as memory maps."""
