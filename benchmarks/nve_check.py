"""NVE energy conservation of the MD driver (float64), the numbers behind tests/test_md.py.

    python benchmarks/nve_check.py

256 shifted-force LJ argon atoms (4 fs, skin 0.4 Å, 50-step chunks) and the 48-atom
RPBE-D3 water frame (0.5 fs, skin 1 Å, 10-step chunks), 1000 steps each: drift (last
minus first) and spread (max minus min) of the conserved energy per atom over the chunks.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402

from nemd.data import water_data_dir  # noqa: E402
from nemd.io.n2p2 import read_input_data  # noqa: E402
from nemd.md import ListSettings, MDSettings, Simulation  # noqa: E402
from nemd.models import load  # noqa: E402
from nemd.models.lennard_jones import LennardJones  # noqa: E402


def report(name, model, numbers, positions, cell, settings, lists) -> None:
    sim = Simulation(model, numbers, positions, cell, True, settings, lists)
    reports = sim.run(1000)
    sim.close()
    energy = np.array([r.conserved for r in reports]) / len(numbers)
    print(f"{name}: drift {energy[-1] - energy[0]:+.2e} eV/atom, spread {np.ptp(energy):.2e} eV/atom, "
          f"mean T {np.mean([r.temperature for r in reports]):.0f} K, {reports[-1].violations} violations")


def main() -> None:
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat((4, 4, 4))
    positions = atoms.positions + np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    report("LJ argon, 256 atoms, 4 fs", LennardJones(), atoms.numbers, positions, atoms.cell.array,
           MDSettings(timestep_fs=4.0, temperature_K=120.0, thermostat="nve", chunk_steps=50), ListSettings(skin=0.4))
    data = water_data_dir()
    frame = read_input_data(data / "n2p2-reference" / "dft-rpbe-d3-20.input.data")[1].structure
    report("BPNN water, 48 atoms, 0.5 fs", load("bpnn", data / "bpnn-rpbe-d3"), frame.numbers, frame.positions,
           frame.cell, MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="nve", chunk_steps=10),
           ListSettings(skin=1.0))


if __name__ == "__main__":
    main()
