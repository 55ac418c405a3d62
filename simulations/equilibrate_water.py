"""Make a pre-equilibrated liquid-water box for nemd to ship (``nemd/io/liquids/``).

    python simulations/equilibrate_water.py --molecules 171 --density 0.997 --ps 10

A water box is built, minimised (FIRE) and run in Langevin NVT (every atom thermostatted,
so the O–H vibrations equilibrate too) with the RPBE-D3 BPNN for --ps picoseconds; the last
state (positions and momenta) is saved with how it was made: the command, the model, the
length, and over the second half of the run the kinetic temperature of O and H and the
O–O RDF's first peak and coordination. Units: Å, g/cm^3, K, fs, ps.
"""

import argparse
import datetime
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from nemd.analysis import describe_peaks, kinetic_temperatures, radial_distribution
from nemd.io import water_box
from nemd.io.equilibrated import LIQUIDS_DIR, save_box
from nemd.md import ListSettings, MDSettings, Simulation, fire_minimize
from nemd.models import load
from nemd.structure import Structure
from nemd.ui import Progress


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecules", type=int, required=True)
    p.add_argument("--density", type=float, required=True, help="g/cm^3")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--ps", type=float, default=10.0, help="Langevin NVT length in ps (default 10)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--model", default="bpnn-rpbe-d3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="default nemd/io/liquids/water_<molecules>_<density>.npz")
    args = p.parse_args(argv)
    out = args.out or LIQUIDS_DIR / f"water_{args.molecules}_{args.density:g}.npz"

    model = load(args.model)
    s = water_box(args.molecules, density=args.density, seed=args.seed)
    lists = ListSettings(skin=1.0)
    relaxed = fire_minimize(model, s.numbers, s.positions, s.cell, True, fmax=0.1, max_steps=300, lists=lists,
                            chunk_steps=5, dtype=jnp.float32)
    md = MDSettings(timestep_fs=args.timestep, temperature_K=args.temperature, thermostat="langevin",
                    chunk_steps=10, seed=args.seed)
    sim = Simulation(model, s.numbers, relaxed.positions, s.cell, True, md, lists, dtype=jnp.float32)
    steps = int(round(args.ps * 1000 / args.timestep))
    every = 100  # 50 fs between sampled frames
    frames = []

    def sample(frame):
        if frame.step > steps // 2:
            frames.append(frame)

    with Progress(steps, s.n_atoms, args.timestep, "Langevin NVT") as bar:
        sim.run(steps, every=every, on_frame=sample, on_chunk=bar)
    sim.close()
    temperatures = kinetic_temperatures(np.stack([f.velocities for f in frames]), s.numbers)
    rdf = radial_distribution(((f.positions, f.cell) for f in frames), s.numbers, ["O-O"], r_max=6.0, n_bins=200)
    peaks = describe_peaks(rdf, "O-O")
    info = dict(model=args.model, density=args.density, temperature_K=args.temperature, molecules=args.molecules,
                steps=steps, timestep_fs=args.timestep, thermostat="langevin", seed=args.seed,
                command="python simulations/equilibrate_water.py " + " ".join(sys.argv[1:] if argv is None else argv),
                date=datetime.date.today().isoformat(),
                second_half=dict(frames=len(frames), temperature_K=temperatures, oo_peak_r=peaks.peak_r,
                                 oo_peak_g=peaks.peak_g, oo_minimum_r=peaks.minimum_r,
                                 oo_coordination=peaks.coordination))
    state = Structure(np.asarray(sim.state.position, np.float64), s.numbers, s.cell, s.pbc)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_box(out, state, np.asarray(sim.state.momentum, np.float64), info)
    print(f"wrote {out}: second half T " + ", ".join(f"{k} {v:.1f} K" for k, v in temperatures.items())
          + f"; O-O peak {peaks.peak_r:.2f} Å (g {peaks.peak_g:.2f}), minimum {peaks.minimum_r:.2f} Å, "
          f"coordination {peaks.coordination:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
