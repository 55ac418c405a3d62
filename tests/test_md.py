"""The MD driver: streamed lists, rollback on violations, conservation, restart, errors."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from ase.build import bulk

from nemd.md import ListSettings, MDSettings, Simulation, SimulationError
from nemd.models.lennard_jones import LennardJones


@pytest.fixture(scope="module")
def argon():
    """256 argon atoms, fcc at 5.4 Å, slightly perturbed (melts/relaxes at 120 K)."""
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat((4, 4, 4))
    positions = atoms.positions + np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    return atoms.numbers, positions, atoms.cell.array


def simulate(argon, steps, skin=0.4, mode="async", **settings):
    numbers, positions, cell = argon
    defaults = dict(timestep_fs=4.0, temperature_K=120.0, thermostat="nve", chunk_steps=10)
    sim = Simulation(LennardJones(), numbers, positions, cell, True, MDSettings(**{**defaults, **settings}),
                     ListSettings(skin=skin, mode=mode))
    reports = sim.run(steps)
    sim.close()
    return sim, reports


@pytest.mark.parametrize("thermostat", ["nve", "nose-hoover", "langevin"])
def test_async_and_sync_lists_give_identical_trajectories(argon, thermostat):
    a, reports = simulate(argon, 200, thermostat=thermostat)
    b, _ = simulate(argon, 200, thermostat=thermostat, mode="sync")
    assert reports[-1].rebuilds >= 5  # the lists really were streamed and replaced
    np.testing.assert_array_equal(np.asarray(a.state.position), np.asarray(b.state.position))
    np.testing.assert_array_equal(np.asarray(a.state.momentum), np.asarray(b.state.momentum))


def test_violations_are_detected_and_recovered(argon):
    """A tiny skin makes stale lists invalid within a chunk: every violation is rolled
    back and redone with a fresh list, giving the trajectory of a run that never needed to."""
    tight, reports = simulate(argon, 200, skin=0.15, chunk_steps=20)
    assert reports[-1].violations > 5 and tight.step == 200
    assert all(r.max_displacement < 0.075 for r in reports)  # no accepted step beyond skin/2
    tight_sync, _ = simulate(argon, 200, skin=0.15, chunk_steps=20, mode="sync")
    np.testing.assert_array_equal(np.asarray(tight.state.position), np.asarray(tight_sync.state.position))
    # Same physics as a comfortable skin (lists differ in padding only: rounding-level differences).
    loose, loose_reports = simulate(argon, 200, skin=3.0, chunk_steps=20)
    assert loose_reports[-1].violations == 0
    np.testing.assert_allclose(np.asarray(tight.state.position), np.asarray(loose.state.position), atol=1e-8)


def test_capacity_growth_recompiles_and_keeps_the_trajectory(argon):
    from nemd.neighbors import ListShape

    numbers, positions, cell = argon
    settings = MDSettings(timestep_fs=4.0, temperature_K=120.0, thermostat="nve", chunk_steps=10)
    runs = []
    for mode in ("async", "sync"):
        sim = Simulation(LennardJones(), numbers, positions, cell, True, settings, ListSettings(skin=0.4, mode=mode))
        # Force the smallest possible buffers (the stream's private shape, as nothing else
        # would): the next lists overflow them and must grow.
        sim.stream._shape = ListShape(capacity=int(sim.stream.current.n_pairs), max_neighbors=1, by_kind=(1,))
        reports = sim.run(200)
        runs.append(sim)
        current = sim.stream.current
        assert reports[-1].recompilations >= 1 and current.capacity > int(current.n_pairs)
    np.testing.assert_array_equal(np.asarray(runs[0].state.position), np.asarray(runs[1].state.position))
    reference, _ = simulate(argon, 200)
    np.testing.assert_allclose(np.asarray(runs[0].state.position), np.asarray(reference.state.position), atol=1e-8)


@dataclasses.dataclass(frozen=True)
class CompactLJ(LennardJones):
    """Asks the driver for lists with in-cutoff bounds (LJ itself does not use them)."""

    uses_within_cutoff_bounds = True


def test_outgrown_within_cutoff_bounds_are_grown_and_the_chunk_redone(argon, monkeypatch):
    """Lists whose in-cutoff bounds are measured too small (half the true counts) are
    outgrown; the driver detects it every step, rebuilds with larger bounds and redoes the
    chunk, so the trajectory is the one of plain lists, in both neighbour modes."""
    import nemd.neighbors.packing as packing

    numbers, positions, cell = argon
    settings = MDSettings(timestep_fs=4.0, temperature_K=120.0, thermostat="nve", chunk_steps=10)
    reference, _ = simulate(argon, 100)
    counts_within = packing._counts_within
    monkeypatch.setattr(packing, "_counts_within", lambda *args: counts_within(*args) // 2)
    for mode in ("async", "sync"):
        sim = Simulation(CompactLJ(), numbers, positions, cell, True, settings, ListSettings(skin=0.4, mode=mode))
        first = sim.stream.current.shape.within_cutoff_by_kind
        reports = sim.run(100)
        sim.close()
        assert first and sim.stream.current.shape.within_cutoff_by_kind[0] > first[0]
        assert reports[-1].violations >= 1 and sim.step == 100
        np.testing.assert_array_equal(np.asarray(sim.state.position), np.asarray(reference.state.position))


def test_nve_energy_conservation_lennard_jones(argon):
    """Shifted-force LJ argon, 4 fs steps (~1/50 of the fastest vibration period).

    Velocity Verlet conserves a shadow energy: measured over 1000 steps, drift 1.1e-6 and
    spread 2.8e-6 eV/atom (simulations/nve_check.py). Bound 2e-5 eV/atom: ~8x the measurement,
    0.2 % of kT at 120 K; a wrong force (sign, missing pair, stale list) breaks it by orders."""
    sim, reports = simulate(argon, 1000, chunk_steps=50)
    energies = np.array([r.conserved for r in reports]) / 256
    drift = abs(energies[-1] - energies[0])
    spread = energies.max() - energies.min()
    assert drift < 2e-5 and spread < 2e-5
    assert 40 < np.mean([r.temperature for r in reports]) < 140


def test_restart_reproduces_uninterrupted_run(argon, tmp_path):
    numbers, positions, cell = argon
    settings = MDSettings(timestep_fs=4.0, temperature_K=120.0, thermostat="langevin", chunk_steps=10)
    lists = ListSettings(skin=0.4)
    whole = Simulation(LennardJones(), numbers, positions, cell, True, settings, lists)
    whole.run(150)
    first = Simulation(LennardJones(), numbers, positions, cell, True, settings, lists)
    first.run(70)
    first.save_checkpoint(tmp_path / "run.npz")
    second = Simulation.from_checkpoint(tmp_path / "run.npz", LennardJones())
    assert second.step == 70
    second.run(80)
    np.testing.assert_array_equal(np.asarray(second.state.position), np.asarray(whole.state.position))
    np.testing.assert_array_equal(np.asarray(second.state.rng), np.asarray(whole.state.rng))


def test_langevin_then_nose_hoover_keeps_every_element_at_the_target(argon):
    """Half the atoms get helium's mass (same LJ): each element must carry kT/2 per degree
    of freedom. Langevin thermostats every atom; production continues the trajectory with
    a Nose–Hoover chain (momenta and step carried over), as water_nvt.py does."""
    from nemd.analysis import kinetic_temperatures

    numbers, positions, cell = argon
    mixed = numbers.copy()
    mixed[::2] = 2
    settings = MDSettings(timestep_fs=2.0, temperature_K=120.0, thermostat="langevin", chunk_steps=10)
    lists = ListSettings(skin=0.6)

    def sample(sim, blocks):
        frames = []
        for _ in range(blocks):
            report = sim.run(100)[-1]
            frames.append(sim.frame(report))
        by_element = kinetic_temperatures(np.stack([f.velocities for f in frames]), mixed)
        last = kinetic_temperatures(frames[-1].velocities, mixed)  # per-element means recombine to T
        assert (last["He"] + last["Ar"]) / 2 == pytest.approx(frames[-1].observables["temperature"], rel=1e-5)
        return by_element

    langevin = Simulation(LennardJones(), mixed, positions, cell, True, settings, lists)
    langevin.run(600)
    equilibrated = sample(langevin, 15)
    momenta = np.asarray(langevin.state.momentum)
    langevin.continue_with(thermostat="nose-hoover")
    assert langevin.step == 2100 and langevin.settings.thermostat == "nose-hoover"
    np.testing.assert_array_equal(np.asarray(langevin.state.momentum), momenta)
    production = sample(langevin, 15)
    with pytest.raises(ValueError, match="skin cannot change"):
        langevin.continue_with(skin=2.0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        langevin.continue_with(temperature_K=-1.0)
    # A new Simulation continues a run as well (momenta and step carried over).
    fresh = Simulation(LennardJones(), mixed, np.asarray(langevin.state.position), cell, True, settings, lists,
                       momenta=langevin.state.momentum, step=langevin.step)
    assert fresh.step == 3600
    np.testing.assert_array_equal(np.asarray(fresh.state.momentum), np.asarray(langevin.state.momentum))
    # 128 atoms per element, 15 samples: standard error ~2 % of T.
    for temperatures in (equilibrated, production):
        assert temperatures["He"] == pytest.approx(120.0, rel=0.07)
        assert temperatures["Ar"] == pytest.approx(120.0, rel=0.07)


@dataclasses.dataclass(frozen=True)
class ExplodingLJ(LennardJones):
    """Energy and forces become NaN once any atom crosses x = wall (Å)."""

    wall: float = 0.0

    def _energy(self, numbers, kinds):
        base = super()._energy(numbers, kinds)
        return lambda R, neighbor, cell: base(R, neighbor, cell) + 1e-3 * jnp.sqrt(self.wall - jnp.max(R[:, 0]))


def test_nan_energy_stops_with_the_step_and_keeps_the_last_good_state(argon):
    numbers, positions, cell = argon
    model = ExplodingLJ(wall=float(positions[:, 0].max()) + 0.05)
    sim = Simulation(model, numbers, positions, cell, True, MDSettings(timestep_fs=4.0, temperature_K=120.0, chunk_steps=5))
    with pytest.raises(SimulationError, match=r"non-finite forces or positions at step (\d+)") as info:
        sim.run(500)
    assert 0 < info.value.step <= 500 and sim.step < info.value.step
    assert np.all(np.isfinite(np.asarray(sim.state.position))) and np.all(np.isfinite(np.asarray(sim.state.force)))


@pytest.mark.parametrize("kind, settings, message", [
    (MDSettings, dict(timestep_fs=0.0), "timestep must be positive"),
    (MDSettings, dict(timestep_fs=-1.0), "timestep must be positive"),
    (MDSettings, dict(temperature_K=-5.0), "temperature must be positive"),
    (MDSettings, dict(temperature_K=0.0), "temperature must be positive"),
    (MDSettings, dict(thermostat="berendsen"), "unknown thermostat"),
    (MDSettings, dict(chunk_steps=0), "chunk_steps"),
    (MDSettings, dict(tau_fs=-10.0), "time constant"),
    (ListSettings, dict(mode="gpu"), "unknown neighbour mode"),
    (ListSettings, dict(skin=0.0), "skin must be positive"),
    (ListSettings, dict(backend="cuda"), "unknown neighbour backend"),
    (ListSettings, dict(n_threads=0), "n_threads"),
])
def test_bad_settings(kind, settings, message):
    with pytest.raises(ValueError, match=message):
        kind(**settings)


def test_bad_structures(argon):
    numbers, positions, cell = argon
    with pytest.raises(ValueError, match="do not match"):
        Simulation(LennardJones(), numbers[:-1], positions, cell)
    bad = positions.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Simulation(LennardJones(), numbers, bad, cell)
    bad = positions.copy()
    bad[7] = bad[2] + 0.1
    with pytest.raises(ValueError, match="atoms 2 and 7 overlap"):
        Simulation(LennardJones(), numbers, bad, cell)


def test_static_list_with_too_small_skin_fails_clearly(argon):
    with pytest.raises(SimulationError, match="static list: increase the skin"):
        simulate(argon, 200, skin=0.05, mode="static")


def test_nve_energy_conservation_bpnn_water(rpbe_model, dft_frames):
    """48 RPBE-D3 water atoms, 0.5 fs steps (1/18 of the O-H stretch period), 1000 steps.

    Measured: drift 8.4e-5, spread 2.3e-4 eV/atom (simulations/nve_check.py). Bound 1e-3 eV/atom
    (4 % of kT at 300 K): ~4x the spread; a stale list or a wrong force gives >> 1e-2."""
    s = dft_frames[1].structure
    settings = MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="nve")
    sim = Simulation(rpbe_model, s.numbers, s.positions, s.cell, True, settings, ListSettings(skin=1.0))
    reports = sim.run(1000)
    energies = np.array([r.conserved for r in reports]) / s.n_atoms
    assert abs(energies[-1] - energies[0]) < 1e-3 and energies.max() - energies.min() < 1e-3
    assert reports[-1].rebuilds > 10  # streamed lists were in use throughout


def test_float32_dynamics_and_minimisation_with_x64_enabled(argon):
    """float32 runs (the default for users) must work when x64 is on (float64 list references)."""
    from nemd.md import fire_minimize

    numbers, positions, cell = argon
    relaxed = fire_minimize(LennardJones(), numbers, positions, cell, True, fmax=1e-3, max_steps=20,
                            lists=ListSettings(skin=0.4), dtype=jnp.float32)
    assert relaxed.steps > 0 and np.isfinite(relaxed.energy)
    sim = Simulation(LennardJones(), numbers, relaxed.positions, cell, True,
                     MDSettings(timestep_fs=4.0, temperature_K=120.0, chunk_steps=10), ListSettings(skin=0.4),
                     dtype=jnp.float32)
    reports = sim.run(50)
    sim.close()
    assert sim.state.position.dtype == jnp.float32 and sim.step == 50
    assert np.isfinite(reports[-1].temperature) and reports[-1].max_displacement > 0


def test_fire_stops_at_the_first_step_below_fmax(argon):
    """FIRE's chunks end on the predicate max |F| < fmax, not at a chunk boundary: one
    step fewer is not converged."""
    from nemd.md import fire_minimize

    numbers, positions, cell = argon
    kwargs = dict(fmax=0.02, lists=ListSettings(skin=0.4), chunk_steps=7)
    done = fire_minimize(LennardJones(), numbers, positions, cell, True, max_steps=500, **kwargs)
    assert done.converged and done.max_force < 0.02 and done.steps % 7 != 0
    short = fire_minimize(LennardJones(), numbers, positions, cell, True, max_steps=done.steps - 1, **kwargs)
    assert not short.converged and short.max_force >= 0.02 and short.steps == done.steps - 1
    assert short.energy > done.energy


def test_checkpoint_files_round_trip_nested_state(tmp_path):
    from nemd.md import checkpoint

    state = dict(step=7, cell=None, settings=dict(skin=1.0, mode="async"), numbers=np.arange(4),
                 state=[np.ones((4, 3), np.float32), np.zeros(2)], stream=dict(reference=np.eye(3), builds=3))
    checkpoint.save(tmp_path / "c.npz", state)
    back = checkpoint.load(tmp_path / "c.npz")
    assert back["step"] == 7 and back["cell"] is None and back["settings"] == state["settings"]
    assert back["state"][0].dtype == np.float32
    for a, b in [(back["numbers"], state["numbers"]), (back["stream"]["reference"], np.eye(3))]:
        np.testing.assert_array_equal(a, b)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a nemd checkpoint"):
        checkpoint.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.npz")


def test_kinetic_temperature_errors_match_independent_frames():
    """Independent Maxwell–Boltzmann frames: the block standard error of each element's
    mean temperature is T sqrt(2 / (3 N frames)); identical frames give zero."""
    from nemd import units
    from nemd.analysis import kinetic_temperature_errors, kinetic_temperatures

    rng = np.random.default_rng(0)
    numbers = np.array([8, 1, 1] * 100)
    sigma = np.sqrt(units.KB * 300.0 / units.masses_of(numbers))[None, :, None] * units.PER_FS * 1e3  # Å/ps
    errors = []
    for _ in range(40):
        v = rng.normal(size=(50, numbers.size, 3)) * sigma
        errors.append(kinetic_temperature_errors(v, numbers)["O"])
    expected = 300.0 * np.sqrt(2 / (3 * 100 * 50))
    assert np.mean(errors) == pytest.approx(expected, rel=0.2)
    assert kinetic_temperatures(v, numbers)["H"] == pytest.approx(300.0, rel=0.03)
    same = np.repeat(v[:1], 10, axis=0)
    assert kinetic_temperature_errors(same, numbers)["H"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(kinetic_temperature_errors(v[:3], numbers)["O"])
