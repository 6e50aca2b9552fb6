"""ament_python / pip packaging of monotakd_ros."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "monotakd_ros"


def share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    """A data_files entry installing ``folder/pattern`` under share/monotakd_ros/folder."""
    files = [p for p in glob(f"{folder}/{pattern}") if Path(p).is_file()]
    return (f"share/{PACKAGE}/{folder}", files)


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*.py"),
        share("config", "*.*"),
        share("config/models", "*.yaml"),
        share("config/train", "*.yaml"),
        share("models", "*"),
        share("models/default_student", "*"),
        share("interfaces/vision_msgs/msg", "*.msg"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="monotakd_ros developers",
    maintainer_email="monotakd@example.com",
    description="MonoTAKD monocular 3D detection for ROS 2 (detector node, training, evaluation).",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "monotakd-eval = monotakd_ros.eval.cli:main",
            "monotakd-synth = monotakd_ros.data.synth.cli:main",
            "monotakd-kitti2bag = monotakd_ros.bags.cli:kitti2bag_main",
            "monotakd-train = monotakd_ros.training.cli:main",
            "monotakd-ablation = monotakd_ros.training.ablation:main",
            "monotakd-msg-hashes = monotakd_ros.ros.type_hashes:main",
            "monotakd_detector = monotakd_ros.nodes.detector:main",
            "monotakd-distill = monotakd_ros.nodes.distiller_cli:main",
            "monotakd_distiller = monotakd_ros.nodes.distiller:main",
            "monotakd_replay = monotakd_ros.nodes.replay:main",
            "monotakd_evaluator = monotakd_ros.nodes.evaluator:main",
            "monotakd-replay-eval = monotakd_ros.nodes.replay_eval:main",
            "monotakd-export = monotakd_ros.inference.onnx_export:main",
        ],
    },
)
