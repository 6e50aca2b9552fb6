"""KITTI 3D object evaluation (2D bbox, BEV, 3D, AOS at R40 and R11), as the official devkit."""

from monotakd_ros.eval.kitti_eval import KittiEvalResult, evaluate_kitti

__all__ = ["KittiEvalResult", "evaluate_kitti"]
