"""``nemd export traj.h5 frames.extxyz``: trajectory frames to extended XYZ.

    nemd export runs/water_nvt.h5 last10.extxyz --start -10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nemd export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trajectory", type=Path, help="nemd H5MD file")
    parser.add_argument("out", type=Path, help="extended XYZ file to write")
    parser.add_argument("--start", type=int, default=None, help="first frame (Python slice: negative from the end)")
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--step", type=int, default=None)
    args = parser.parse_args(argv)
    from ..io.export import h5md_to_extxyz

    try:
        n = h5md_to_extxyz(args.trajectory, args.out, args.start, args.stop, args.step)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{n} frames -> {args.out}")
    return 0
