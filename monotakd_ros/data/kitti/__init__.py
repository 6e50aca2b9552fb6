"""kitti sub-package."""
