"""Shipped pre-equilibrated water boxes and starts replicated or trimmed from them."""

import dataclasses

import numpy as np
import pytest

from nemd.io import water_box
from nemd.io.equilibrated import (MAX_TRIM, EquilibratedBox, equilibrated_water, load_box, replicate, save_box,
                                  shipped_boxes, trim)
from nemd.units import density_g_cm3


def fake_box(n=24, density=0.997, temperature=300.0, seed=0):
    s = water_box(n, density=density, seed=seed)
    momenta = np.random.default_rng(seed).normal(size=(s.n_atoms, 3))
    return EquilibratedBox(s, momenta, dict(density=density, temperature_K=temperature, molecules=n))


def oh_lengths(s):
    """O–H distances of each molecule (minimum image), atoms O, H, H per molecule."""
    r = s.positions.reshape(-1, 3, 3)
    d = r[:, 1:] - r[:, :1]
    d -= np.round(d @ np.linalg.inv(s.cell)) @ s.cell
    return np.linalg.norm(d, axis=-1)


def test_save_load_round_trip(tmp_path):
    box = fake_box()
    save_box(tmp_path / "b.npz", box.structure, box.momenta, box.info)
    back = load_box(tmp_path / "b.npz")
    np.testing.assert_array_equal(back.structure.positions, box.structure.positions)
    np.testing.assert_array_equal(back.momenta, box.momenta)
    assert back.info == box.info and back.n_molecules == 24


def test_replicate_keeps_density_molecules_and_momenta():
    box = fake_box()
    big = replicate(box, 2)
    assert big.n_molecules == 8 * 24
    assert density_g_cm3(big.structure.numbers, big.structure.cell) == pytest.approx(0.997, rel=1e-4)
    np.testing.assert_allclose(oh_lengths(big.structure), np.tile(oh_lengths(box.structure), (8, 1)), atol=1e-12)
    np.testing.assert_array_equal(big.momenta[: box.momenta.shape[0]], box.momenta)
    assert list(big.structure.numbers[:6]) == [8, 1, 1, 8, 1, 1]


def test_trim_removes_whole_molecules_at_the_same_density():
    box = replicate(fake_box(), 2)
    small = trim(box, 190, seed=3)
    assert small.n_molecules == 190 and small.structure.n_atoms == 570
    assert density_g_cm3(small.structure.numbers, small.structure.cell) == pytest.approx(0.997, rel=1e-4)
    # every kept molecule keeps its bond lengths and momenta
    lengths = {tuple(np.round(x, 9)) for x in oh_lengths(box.structure)}
    assert all(tuple(np.round(x, 9)) in lengths for x in oh_lengths(small.structure))
    kept = {tuple(row) for row in box.momenta}
    assert all(tuple(row) in kept for row in small.momenta)


def test_start_is_chosen_by_density_and_size_and_rescaled_to_temperature():
    boxes = [fake_box(24, 0.997), fake_box(24, 0.894, seed=1)]
    exact = equilibrated_water(24, 0.997, 300.0, boxes=boxes)
    np.testing.assert_array_equal(exact.structure.positions, boxes[0].structure.positions)
    hot = equilibrated_water(24, 0.894, 600.0, boxes=boxes)
    np.testing.assert_allclose(hot.momenta, boxes[1].momenta * np.sqrt(2.0))
    assert equilibrated_water(192, 0.997, 300.0, boxes=boxes).n_molecules == 192
    within = int(np.ceil(192 / (1 + MAX_TRIM)))
    assert equilibrated_water(within, 0.997, 300.0, boxes=boxes).n_molecules == within
    assert equilibrated_water(150, 0.997, 300.0, boxes=boxes) is None  # too many surplus molecules
    assert equilibrated_water(24, 1.05, 300.0, boxes=boxes) is None  # no box of that density


def test_shipped_boxes_are_equilibrated_rpbe_liquids(rpbe_model):
    """Every shipped box: O, H, H order, whole molecules, its stated density, finite forces,
    and its record says the second half of its run was at the target temperature for O and
    H (5 %) with a liquid O–O structure."""
    from nemd.models.evaluate import energy_and_forces

    boxes = shipped_boxes()
    assert boxes, "no shipped boxes in nemd/io/liquids"
    for box in boxes:
        s, info = box.structure, box.info
        assert info["model"] == "bpnn-rpbe-d3" and info["command"].startswith("python simulations/equilibrate_water")
        assert density_g_cm3(s.numbers, s.cell) == pytest.approx(info["density"], rel=1e-4)
        assert np.all((oh_lengths(s) > 0.85) & (oh_lengths(s) < 1.2))
        half = info["second_half"]
        for element in ("O", "H"):
            assert half["temperature_K"][element] == pytest.approx(info["temperature_K"], rel=0.05)
        assert 2.7 < half["oo_peak_r"] < 2.9 and 3.5 < half["oo_coordination"] < 6.0
        energy, forces = energy_and_forces(rpbe_model, s)
        assert np.isfinite(energy) and np.all(np.isfinite(forces))
        replicated = equilibrated_water(8 * box.n_molecules, info["density"], 300.0)
        assert replicated is not None and replicated.n_molecules == 8 * box.n_molecules


def test_water_preset_starts_from_the_shipped_box_unless_told_to_build():
    from nemd.cli.water import build_structure, parse_args

    structure, description, momenta = build_structure(parse_args(["--atoms", "512"]))
    assert momenta is not None and structure.n_atoms == 513 and "pre-equilibrated" in description
    for argv in (["--atoms", "512", "--build"], ["--atoms", "512", "--density", "0.894"], ["--molecules", "100"]):
        structure, description, momenta = build_structure(parse_args(argv))
        assert momenta is None and "pre-equilibrated" not in description
