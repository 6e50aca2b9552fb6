"""Detector node overhead per frame vs model time, and end-to-end latency.

Usage:
    .venv/bin/python bench/bench_node_overhead.py                    # small config, CPU
    .venv/bin/python bench/bench_node_overhead.py --device cuda --fp16
    .venv/bin/python bench/bench_node_overhead.py --e2e-seconds 0    # components only

Part 1 times each step of the node's per-frame path in-process on a 375 x 1242 bgr8 frame with
the KITTI P2: Image -> numpy, Image/CameraInfo pairing, CameraInfo check, preprocessing, the
network, post-processing, output frames + Detection3DArray/MarkerArray building and their
serialisation (what publish costs). Target: conversion + sync + message building <= 5 % of
inference time and <= 2 ms per frame.

Part 2 runs the real node (``python -m monotakd_ros.nodes.detector``) and publishes frames at
10 Hz (KITTI's rate) from another process; it reports stamp -> publish (the node's
``~/debug/pipeline_latency_ms``) and stamp -> receive, with reliable QoS (keep last 1: still
newest-only). The model is randomly initialised: timings are those of the configured
architecture. For the shipped student against a camera process with sensor-data QoS, the
delivered share and the CPU per process, use ``bench_node_realtime.py``; for the decode alone,
``bench_decode.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# As the detector node does (nodes/detector.py): OpenMP threads wait passively, or the network
# times below measure spinning threads fighting the other processes for the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))  # the detector test helpers: frames, node process

from helpers_detector import (  # noqa: E402
    KITTI_P2,
    DetectorClient,
    NodeProcess,
    camera_pair,
    road_image,
    spin_until,
    stamp_msg,
)

from monotakd_ros.inference import StudentPredictor  # noqa: E402
from monotakd_ros.models.config import load_model_config  # noqa: E402
from monotakd_ros.training.random_checkpoint import make_random_student_checkpoint  # noqa: E402

# Node overhead as docs/benchmarks.md counts it; rgb8 (a copy) is the worse of the two conversions.
OVERHEAD = ("rgb8_to_bgr8", "pairing", "camera_info_check", "output_frame", "detection_array",
            "marker_array", "serialize")


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def spread(values: list[float]) -> str:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"median {p50:8.3f} ms  p10 {p10:8.3f}  p90 {p90:8.3f}"


def component_times(predictor: StudentPredictor, repeats: int) -> dict[str, list[float]]:
    """Per-step milliseconds of the node's frame path (no DDS)."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from monotakd_ros.inference.drawing import draw_boxes_cam
    from monotakd_ros.ros.camera_input import projection_from_camera_info
    from monotakd_ros.ros.image_conversion import array_to_image_msg, image_msg_to_bgr8
    from monotakd_ros.ros.messages import detection_array_msg, marker_array_msg
    from monotakd_ros.ros.output_frames import boxes_in_output_frame
    from monotakd_ros.ros.pairing import LatestPairer

    image_bgr = road_image(seed=0)
    image_msg, info_msg = camera_pair(image_bgr, KITTI_P2, stamp_msg(1_000_000_000), "camera")
    rgb_msg, _ = camera_pair(np.ascontiguousarray(image_bgr[..., ::-1]), KITTI_P2,
                             stamp_msg(1_000_000_000), "camera", encoding="rgb8")
    pairer = LatestPairer()
    counter = iter(range(10**9))

    def pair() -> None:
        stamp = stamp_msg(2_000_000_000 + 100_000_000 * next(counter))
        image_msg.header.stamp = info_msg.header.stamp = stamp
        pairer.add_camera_info(info_msg)
        pairer.add_image(image_msg)

    times: dict[str, list[float]] = {
        "image_to_bgr8": timed(lambda: image_msg_to_bgr8(image_msg), repeats),
        "rgb8_to_bgr8": timed(lambda: image_msg_to_bgr8(rgb_msg), repeats),
        "pairing": timed(pair, repeats),
        "camera_info_check": timed(lambda: projection_from_camera_info(info_msg, (375, 1242)),
                                   repeats),
    }
    prepare, network, decode = [], [], []
    for _ in range(repeats + 1):
        detections = predictor.predict(image_bgr, KITTI_P2)
        prepare.append(detections.timing.prepare_ms)
        network.append(detections.timing.network_ms)
        decode.append(detections.timing.decode_ms)
    times.update(preprocess=prepare[1:], network=network[1:], postprocess=decode[1:])
    header = image_msg.header
    class_ids = [name.lower() for name in detections.class_names]
    boxes = boxes_in_output_frame(detections.boxes_cam, None)
    arrays = (boxes.center, boxes.quat_xyzw, boxes.size, detections.scores, class_ids)
    messages = [detection_array_msg(header, *arrays), marker_array_msg(header, *arrays)]
    times.update(
        output_frame=timed(lambda: boxes_in_output_frame(detections.boxes_cam, None), repeats),
        detection_array=timed(lambda: detection_array_msg(header, *arrays), repeats),
        marker_array=timed(lambda: marker_array_msg(header, *arrays), repeats),
        serialize=timed(lambda: [serialize_message(m) for m in messages], repeats),
        debug_image_optional=timed(lambda: array_to_image_msg(draw_boxes_cam(
            image_bgr, detections.boxes_cam, KITTI_P2, class_ids, detections.scores), "bgr8",
            Image()), repeats),
    )
    print(f"detections per frame: {len(detections)} (message building grows with this)")
    return times


def end_to_end(checkpoint: Path, device: str, fp16: bool, seconds: float,
               log_dir: Path) -> None:
    """Publish at 10 Hz to a node process; print stamp -> publish / receive latencies."""
    node = NodeProcess(log_dir / "node.log", {
        "model_path": checkpoint, "device": device, "fp16": fp16, "score_threshold": 0.005,
        "max_detections": 20, "image_topic": "/bench/image", "camera_info_topic": "/bench/info",
        "qos_reliability": "reliable"})
    client = DetectorClient("/bench/image", "/bench/info", reliable=True)
    try:
        if not client.wait_for_detector(timeout_s=60.0):
            raise RuntimeError(f"node did not start:\n{node.log()}")
        image_msg, info_msg = camera_pair(road_image(seed=1), KITTI_P2,
                                          client.node.get_clock().now().to_msg(),
                                          "camera_color_left")
        receive_ms: list[float] = []
        sent_ns: dict[tuple[int, int], int] = {}

        def on_detections(msg: object) -> None:
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            if key in sent_ns:
                receive_ms.append((time.time_ns() - sent_ns[key]) / 1e6)

        from vision_msgs.msg import Detection3DArray
        client.node.create_subscription(Detection3DArray, client.topics["detections"],
                                        on_detections, 50)
        spin_until(client.executor, lambda: False, 1.0)
        client.received["latency_ms"].clear()
        start = time.monotonic()
        frames = 0
        while time.monotonic() - start < seconds:
            now = client.node.get_clock().now()
            stamp = now.to_msg()
            sent_ns[(stamp.sec, stamp.nanosec)] = now.nanoseconds
            image_msg.header.stamp = info_msg.header.stamp = stamp
            client.send(image_msg, info_msg)
            frames += 1
            next_send = start + frames / 10.0
            spin_until(client.executor, lambda until=next_send: time.monotonic() >= until, 1.0)
        spin_until(client.executor, lambda: False, 1.0)
        publish_ms = [m.data for m in client.received["latency_ms"]]
        print(f"\nend to end at 10 Hz for {seconds:.0f} s: sent {frames}, "
              f"processed {len(publish_ms)}, received {len(receive_ms)}")
        if publish_ms:
            print(f"  stamp -> publish : {spread(publish_ms)}  p95 "
                  f"{np.percentile(publish_ms, 95):.1f} ms")
        if receive_ms:
            print(f"  stamp -> receive : {spread(receive_ms)}  p95 "
                  f"{np.percentile(receive_ms, 95):.1f} ms")
    finally:
        client.close()
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/models/small.yaml")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--e2e-seconds", type=float, default=8.0,
                        help="length of the end-to-end run; 0 skips it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"cpus={os.cpu_count()} | torch {torch.__version__} threads={torch.get_num_threads()}"
          f" | device={args.device} fp16={args.fp16} | config={args.config.name}")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_random_student_checkpoint(Path(tmp) / "student",
                                                    load_model_config(args.config))
        predictor = StudentPredictor.from_checkpoint(
            checkpoint, device=args.device, fp16=args.fp16, score_threshold=0.005,
            max_detections=20)
        print(f"model: {predictor.num_parameters / 1e6:.2f} M parameters, input "
              f"{predictor.spec.input_hw}, frame 375 x 1242 bgr8")
        times = component_times(predictor, args.repeats)
        for name, values in times.items():
            print(f"{name:>18}: {spread(values)}")
        median = {name: statistics.median(values) for name, values in times.items()}
        overhead_ms = sum(median[name] for name in OVERHEAD)
        inference_ms = median["preprocess"] + median["network"] + median["postprocess"]
        print(f"\nnode overhead (conversion + sync + messages + serialisation): "
              f"{overhead_ms:.3f} ms = {100 * overhead_ms / inference_ms:.2f} % of inference "
              f"({inference_ms:.1f} ms: preprocess + network + postprocess)  "
              f"[target <= 5 % and <= 2 ms]")
        non_network = overhead_ms + median["preprocess"] + median["postprocess"]
        print(f"everything but the network: {non_network:.2f} ms = "
              f"{100 * non_network / median['network']:.1f} % of network time "
              f"({median['network']:.1f} ms)")
        predictor.release()
        if args.e2e_seconds > 0:
            end_to_end(checkpoint, args.device, args.fp16, args.e2e_seconds, Path(tmp))


if __name__ == "__main__":
    main()
