"""Delivery of full-size camera images over loopback, per transport setting (issue 15 item 4).

Usage:
    scripts/env.sh python bench/bench_image_delivery.py                 # every case, 10 s each
    scripts/env.sh python bench/bench_image_delivery.py --cases default shipped --seconds 30

A publisher process sends 1242 x 375 rgb8 Images (1.4 MB) with a CameraInfo right before each
at ``--rate-hz``; a subscriber process counts what arrives. Each case runs both processes
under its own ROS_DOMAIN_ID with one transport setting:

- ``default``: no Fast DDS profile (``FASTDDS_DEFAULT_PROFILES_FILE`` unset) - the wheel's
  built-in transports (UDPv4 + shared memory), 212 kB default socket buffers;
- ``udp_only``: UDPv4 only, default buffers - what is left when shared memory is unusable;
- ``udp_big_buffers``: UDPv4 only with 4 MB socket buffers;
- ``shm_only``: shared memory only, default segment;
- ``shm_big_segment``: shared memory only, 16 MB segment; ``udp_shm_big``: both, enlarged;
- ``large_data``: ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (TCP + shared memory);
- ``shipped``: ``config/fastdds_camera.xml``, the profile ``scripts/env.sh`` applies;
  ``shipped_pub_only`` / ``shipped_sub_only``: only one side uses it;
- ``reliable``: no profile, both sides reliable QoS;
- ``reliable_pub``: no profile, reliable publisher, best-effort subscriber (the detector's
  default with a driver that publishes reliably).

Prints the machine, then per case: images and CameraInfos sent and received (%).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_PROFILE = ROOT / "config/fastdds_camera.xml"

_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>{descriptors}
    </transport_descriptors>
    <participant profile_name="bench_participant" is_default_profile="true">
      <rtps>
        <userTransports>{names}
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""
_UDP = """
      <transport_descriptor>
        <transport_id>udp</transport_id>
        <type>UDPv4</type>{buffers}
      </transport_descriptor>"""
_SHM = """
      <transport_descriptor>
        <transport_id>shm</transport_id>
        <type>SHM</type>{segment}
      </transport_descriptor>"""
_BIG_SEGMENT = """
        <segment_size>16777216</segment_size>"""
_BIG_BUFFERS = """
        <sendBufferSize>4194304</sendBufferSize>
        <receiveBufferSize>4194304</receiveBufferSize>"""


def profile_text(udp: bool, shm: bool, big_buffers: bool, big_segment: bool = False) -> str:
    """A Fast DDS XML profile with only the chosen transports."""
    descriptors, names = "", ""
    if udp:
        descriptors += _UDP.format(buffers=_BIG_BUFFERS if big_buffers else "")
        names += "\n          <transport_id>udp</transport_id>"
    if shm:
        descriptors += _SHM.format(segment=_BIG_SEGMENT if big_segment else "")
        names += "\n          <transport_id>shm</transport_id>"
    return _PROFILE.format(descriptors=descriptors, names=names)


def case_env(case: str, tmp: Path, domain_id: int) -> tuple[dict[str, str], bool]:
    """Environment of both processes and whether QoS is reliable, for one case."""
    if case in ("shipped_pub_only", "shipped_sub_only", "reliable_pub"):
        return case_env("default", tmp, domain_id)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                 "FASTDDS_BUILTIN_TRANSPORTS"):
        env.pop(name, None)
    generated = {"udp_only": (True, False, False), "udp_big_buffers": (True, False, True),
                 "shm_only": (False, True, False), "shm_big_segment": (False, True, False, True),
                 "udp_shm_big": (True, True, True, True)}
    if case in generated:
        path = tmp / f"{case}.xml"
        path.write_text(profile_text(*generated[case]))
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    elif case == "large_data":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
    elif case == "shipped":
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(SHIPPED_PROFILE)
    return env, case == "reliable"


def publisher(seconds: float, rate_hz: float, reliable: bool) -> None:
    """Publish CameraInfo + Image pairs at ``rate_hz`` once the subscriber is matched."""
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from monotakd_ros.ros.image_conversion import array_to_image_msg

    rclpy.init()
    node = rclpy.create_node("delivery_publisher")
    qos = QoSProfile(depth=1) if reliable else qos_profile_sensor_data
    image_pub = node.create_publisher(Image, "/delivery/image", qos)
    info_pub = node.create_publisher(CameraInfo, "/delivery/camera_info", qos)
    deadline = time.monotonic() + 30.0
    while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
        time.sleep(0.05)
        if time.monotonic() > deadline:
            raise SystemExit("publisher: no subscriber within 30 s")
    time.sleep(1.0)  # let the reverse discovery finish
    pixels = np.random.default_rng(0).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    image = array_to_image_msg(pixels, "rgb8", Image())
    info = CameraInfo(width=1242, height=375)
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        stamp = node.get_clock().now().to_msg()
        image.header.stamp = info.header.stamp = stamp
        info_pub.publish(info)
        image_pub.publish(image)
        sent += 1
        time.sleep(max(0.0, start + sent / rate_hz - time.monotonic()))
    time.sleep(1.0)
    print(f"SENT {sent}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def subscriber(seconds: float, reliable: bool, depth: int) -> None:
    """Count Images and CameraInfos until ``seconds`` after the first arrives."""
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("delivery_subscriber")
    qos = QoSProfile(depth=depth)
    if not reliable:
        qos.reliability = qos_profile_sensor_data.reliability
    counts = {"image": 0, "info": 0}
    node.create_subscription(Image, "/delivery/image",
                             lambda _m: counts.__setitem__("image", counts["image"] + 1), qos)
    node.create_subscription(CameraInfo, "/delivery/camera_info",
                             lambda _m: counts.__setitem__("info", counts["info"] + 1), qos)
    deadline = time.monotonic() + 40.0 + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        if counts["image"] or counts["info"]:
            deadline = min(deadline, time.monotonic() + seconds + 2.5)
    print(f"RECEIVED {counts['image']} {counts['info']}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def run_case(case: str, seconds: float, rate_hz: float, depth: int, tmp: Path,
             domain_id: int) -> str:
    """One publisher/subscriber pair; a result line."""
    env, reliable = case_env(case, tmp, domain_id)
    pub_env, sub_env = env, env
    if case == "shipped_pub_only":
        pub_env = dict(env, FASTDDS_DEFAULT_PROFILES_FILE=str(SHIPPED_PROFILE))
    elif case == "shipped_sub_only":
        sub_env = dict(env, FASTDDS_DEFAULT_PROFILES_FILE=str(SHIPPED_PROFILE))
    script = [sys.executable, str(Path(__file__).resolve())]
    flags = ["--seconds", str(seconds), "--rate-hz", str(rate_hz), "--depth", str(depth)] + (
        ["--reliable"] if reliable else [])
    pub_flags = flags + (["--reliable"] if case == "reliable_pub" else [])
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    sub = subprocess.Popen(script + ["--role", "sub"] + flags, env=sub_env, **output)
    pub = subprocess.Popen(script + ["--role", "pub"] + pub_flags, env=pub_env, **output)
    pub_out, _ = pub.communicate(timeout=seconds + 60)
    sub_out, _ = sub.communicate(timeout=seconds + 60)
    sent_lines = [line for line in pub_out.splitlines() if line.startswith("SENT")]
    got_lines = [line for line in sub_out.splitlines() if line.startswith("RECEIVED")]
    if not sent_lines or not got_lines:
        return f"{case:>16}: failed\n{pub_out[-800:]}\n{sub_out[-800:]}"
    sent = int(sent_lines[0].split()[1])
    images, infos = (int(v) for v in got_lines[0].split()[1:])
    return (f"{case:>16}: sent {sent:4d}  images {images:4d} ({100 * images / sent:5.1f} %)  "
            f"camera_infos {infos:4d} ({100 * infos / sent:5.1f} %)")


CASES = ("default", "udp_only", "udp_big_buffers", "shm_only", "shm_big_segment", "udp_shm_big",
         "large_data", "shipped", "shipped_pub_only", "shipped_sub_only", "reliable",
         "reliable_pub")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--depth", type=int, default=1,
                        help="subscriber keep-last depth (1 = the detector's)")
    parser.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    parser.add_argument("--reliable", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "pub":
        publisher(args.seconds, args.rate_hz, args.reliable)
        return
    if args.role == "sub":
        subscriber(args.seconds, args.reliable, args.depth)
        return
    load = os.getloadavg()
    print(f"machine: {platform.platform()} | cpus={os.cpu_count()} | load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} | rmem_max "
          f"{Path('/proc/sys/net/core/rmem_max').read_text().strip()} | "
          f"{args.seconds:.0f} s at {args.rate_hz:g} Hz, 1242x375 rgb8 + CameraInfo, "
          f"subscriber keep-last {args.depth}")
    with tempfile.TemporaryDirectory() as tmp:
        for index, case in enumerate(args.cases):
            domain_id = 150 + (os.getpid() + index) % 80
            print(run_case(case, args.seconds, args.rate_hz, args.depth, Path(tmp), domain_id),
                  flush=True)


if __name__ == "__main__":
    main()
