"""``monotakd-synth``: write a synthetic KITTI object set or synthetic KITTI raw drives.

monotakd-synth object --out DIR --frames N --seed S [--overwrite]
monotakd-synth raw --out DIR --frames N --seed S [--drives K] [--scenes street|object]
                   [--overwrite]

Both take ``--image-size WxH --intrinsics FX FY CX CY`` for a camera other than KITTI's
(1242x375, fx 721.5); the scenes of a seed are the same whichever camera renders them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.writer import write_object_dataset, write_raw_drives
from monotakd_ros.errors import ConfigError, MonotakdError

LOG = logging.getLogger("monotakd_ros.synth")


def build_parser() -> argparse.ArgumentParser:
    """The command line of monotakd-synth."""
    parser = argparse.ArgumentParser(prog="monotakd-synth", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode, help_text in (("object", "KITTI object set (training/, testing/, ImageSets/)"),
                            ("raw", "KITTI raw drives (<date>/<date>_drive_XXXX_sync/)")):
        p = sub.add_parser(mode, help=help_text)
        p.add_argument("--out", type=Path, required=True, help="output directory")
        p.add_argument("--frames", type=int, required=True,
                       help="frames in total (object) or per drive (raw)")
        p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace synthetic data already in --out")
        p.add_argument("--workers", type=int, default=1,
                       help="processes generating in parallel (default 1)")
        p.add_argument("--image-size", default=None, metavar="WxH",
                       help="camera image size, e.g. 640x480 (default KITTI's 1242x375)")
        p.add_argument("--intrinsics", type=float, nargs=4, default=None,
                       metavar=("FX", "FY", "CX", "CY"),
                       help="camera intrinsics in pixels (default KITTI's P2); needed with "
                            "--image-size")
        if mode == "object":
            p.add_argument("--val-fraction", type=float, default=0.5,
                           help="share of training frames listed in val.txt (default 0.5)")
            p.add_argument("--test-fraction", type=float, default=0.2,
                           help="share of frames written to testing/ (default 0.2)")
            p.add_argument("--labelled-test", action="store_true",
                           help="write the test share with labels into training/, listed in "
                                "test.txt only: a held-out split to report on")
        else:
            p.add_argument("--drives", type=int, default=1, help="number of drives (default 1)")
            p.add_argument("--scenes", choices=("street", "object"), default="street",
                           help="object: pedestrians and cyclists as dense as in the object "
                                "set's frames (same scene distribution); street: per drive "
                                "(default)")
    return parser


def synth_config_from_args(image_size: str | None, intrinsics: list[float] | None,
                           drive_scenes: str = "street") -> SynthConfig:
    """SynthConfig for ``--image-size`` / ``--intrinsics``; ConfigError names a bad value."""
    if image_size is None:
        if intrinsics is not None:
            raise ConfigError("--intrinsics needs --image-size (the image the camera fills)")
        return SynthConfig(drive_scenes=drive_scenes)  # type: ignore[arg-type]
    width, sep, height = image_size.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or min(int(width), int(height)) < 1:
        raise ConfigError(f"--image-size: expected WIDTHxHEIGHT such as 640x480, got "
                          f"{image_size!r}")
    if intrinsics is None:
        raise ConfigError(f"--image-size {image_size} needs --intrinsics FX FY CX CY: KITTI's "
                          "P2 does not fit another image size")
    return SynthConfig(image_hw=(int(height), int(width)),
                       intrinsics=tuple(float(v) for v in intrinsics),
                       drive_scenes=drive_scenes)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    total = args.frames if args.mode == "object" else args.frames * max(args.drives, 0)
    try:
        config = synth_config_from_args(args.image_size, args.intrinsics,
                                        getattr(args, "scenes", "street"))
        with tqdm(total=total, unit="frame", desc=f"synth {args.mode}") as bar:
            if args.mode == "object":
                sets = write_object_dataset(args.out, args.frames, args.seed, args.val_fraction,
                                            args.test_fraction, overwrite=args.overwrite,
                                            on_frame=bar.update, workers=args.workers,
                                            config=config, labelled_test=args.labelled_test)
                LOG.info("wrote %s: train %d, val %d, test %d frames", args.out,
                         len(sets["train"]), len(sets["val"]), len(sets["test"]))
            else:
                folders = write_raw_drives(args.out, args.drives, args.frames, args.seed,
                                           config=config, overwrite=args.overwrite,
                                           on_frame=bar.update, workers=args.workers)
                LOG.info("wrote %d drive(s) under %s", len(folders), args.out)
    except MonotakdError as err:
        LOG.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
