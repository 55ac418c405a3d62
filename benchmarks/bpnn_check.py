"""Validate the BPNN water potentials: n2p2's regression value, DFT errors, extrapolation.

    python benchmarks/bpnn_check.py [--data ../shared/data/water]

Runs in float64 (reference comparison). Prints the energy of the 1080-atom frame against
n2p2's value, the energy (meV/atom) and force (meV/Å) RMSE of the RPBE-D3 potential on
the 20 RPBE-D3 DFT frames, and the extrapolation counts of both potentials on the
1080-atom frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from nemd.data import water_data_dir  # noqa: E402
from nemd.io.n2p2 import read_input_data  # noqa: E402
from nemd.models import load  # noqa: E402
from nemd.models.bpnn import count_extrapolations  # noqa: E402
from nemd.models.evaluate import energy_and_forces  # noqa: E402
from nemd.units import HARTREE  # noqa: E402

N2P2_REFERENCE_HARTREE = -2.7564547347815904e04


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=water_data_dir(), help="water data directory")
    args = parser.parse_args()
    if args.data is None or not args.data.is_dir():
        raise SystemExit("water data directory not found: pass --data or set NEMD_DATA")
    rpbe = load("bpnn-rpbe-d3", args.data)
    revpbe0 = load("bpnn-revpbe0-d3", args.data)
    frame = read_input_data(args.data / "n2p2-reference" / "predict-1080.input.data")[0].structure
    energy, _ = energy_and_forces(rpbe, frame)
    print(f"1080-atom frame, RPBE-D3: {energy / HARTREE:.10f} Ha (n2p2: {N2P2_REFERENCE_HARTREE:.10f} Ha, "
          f"difference {energy / HARTREE - N2P2_REFERENCE_HARTREE:.2e} Ha)")
    de, df = [], []
    frames = read_input_data(args.data / "n2p2-reference" / "dft-rpbe-d3-20.input.data")
    for f in frames:
        e, forces = energy_and_forces(rpbe, f.structure)
        de.append((e - f.energy) / f.structure.n_atoms)
        df.append((forces - f.forces).ravel())
    de, df = np.asarray(de), np.concatenate(df)
    print(f"RPBE-D3 vs {len(frames)} DFT frames ({sum(f.structure.n_atoms for f in frames)} atoms): "
          f"energy RMSE {1e3 * np.sqrt(np.mean(de**2)):.2f} meV/atom (mean {1e3 * de.mean():+.2f}), "
          f"force RMSE {1e3 * np.sqrt(np.mean(df**2)):.1f} meV/Å, max |dF| {1e3 * np.abs(df).max():.0f} meV/Å")
    for name, model in (("RPBE-D3", rpbe), ("revPBE0-D3", revpbe0)):
        print(f"extrapolation warnings on the 1080-atom frame, {name}: {count_extrapolations(model, frame)}")


if __name__ == "__main__":
    main()
