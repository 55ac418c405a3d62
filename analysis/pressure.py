"""Virial pressure of water under the RPBE-D3 BPNN: the shared liquid or a trajectory.

    python analysis/pressure.py                          # the shared LAMMPS liquid
    python analysis/pressure.py --density 0.94 0.997     # ... rigidly compressed
    python analysis/pressure.py --trajectory traj.h5 --every 5

Tells whether a fixed-volume run sits at the density the potential wants at its
temperature (mean pressure near 0 bar) or is compressed. The kinetic part uses each
frame's kinetic temperature when the trajectory has velocities, else ``--temperature``.
``--density`` rescales the shared liquid's molecules rigidly (oxygen positions and cell
scaled, O–H vectors kept): an unrelaxed upper estimate of the pressure at that density.
Float32 energies, as the MD runs use them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nemd.analysis import kinetic_temperatures
from nemd.analysis.pressure import frame_pressures
from nemd.data import water_data_dir
from nemd.io import read_structure, rescale_water
from nemd.io.h5md import read_frames
from nemd.models import load
from nemd.units import density_g_cm3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=water_data_dir(), help="water data directory")
    parser.add_argument("--trajectory", type=Path, help="nemd H5MD trajectory (default: the shared liquid)")
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--density", type=float, nargs="+", help="g/cm3: also the shared liquid compressed to these")
    parser.add_argument("--temperature", type=float, default=300.0, help="K, when frames have no velocities")
    args = parser.parse_args()
    if args.data is None or not args.data.is_dir():
        raise SystemExit("water data directory not found: pass --data or set NEMD_DATA")
    model = load("bpnn-rpbe-d3", args.data)
    if args.trajectory is None:
        s = read_structure(args.data / "liquid-8640-rpbe-d3.lammps-data")
        for density in args.density or []:
            scaled = rescale_water(s, density)
            p = frame_pressures(model, s.numbers, [(scaled.positions, scaled.cell)], args.temperature)[0]
            print(f"shared LAMMPS liquid rigidly scaled to {density:.4f} g/cm3: pressure {p:.0f} bar")
        numbers, frames, temperatures = s.numbers, [(s.positions, s.cell)], [args.temperature]
        label = "shared LAMMPS liquid"
    else:
        try:
            t = read_frames(args.trajectory, step=args.every)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(str(exc)) from None
        numbers, frames = t.numbers, list(zip(t.positions, t.cell))
        temperatures = ([args.temperature] * len(frames) if t.velocities is None
                        else [float(np.average(list(kinetic_temperatures(v, numbers).values()),
                                               weights=[np.sum(numbers == z) for z in np.unique(numbers)]))
                              for v in t.velocities])
        label = str(args.trajectory)
    density = density_g_cm3(numbers, frames[0][1])
    p = frame_pressures(model, numbers, frames, temperatures)
    print(f"{label}: {len(numbers)} atoms, {density:.4f} g/cm3, {len(p)} frames, "
          f"mean kinetic T {np.mean(temperatures):.1f} K")
    print(f"pressure {p.mean():.0f} bar (frames: min {p.min():.0f}, max {p.max():.0f}, "
          f"s.d. {p.std():.0f} bar)")


if __name__ == "__main__":
    main()
