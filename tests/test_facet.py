"""Facet specifics: parameter counts, the S2 grid round trip and the S2-MLP-Mixer's
equivariance error, trainable r_max, the k(r_max) normalisation and the readout's
regression initialisation.

The energy-function contract (symmetry, forces, smoothness, batching, precision, I/O)
is tested for every graph model in test_graph_models.py.
"""

import dataclasses

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models import load
from nemd.models.evaluate import energy_and_forces
from nemd.models.facet import (PRESETS, FacetConfig, FacetModel, S2MLPMixer, average_degree_table, from_grid,
                               s2_irreps, to_grid)


def expected_parameter_count(cfg: FacetConfig) -> int:
    """Parameters implied by the configuration, counted independently of flax."""
    hidden, sphere = e3nn.Irreps(cfg.hidden), s2_irreps(cfg.lmax)
    n0, m, s = hidden.count("0e"), cfg.mixer_channels, len(cfg.species)
    scalars = e3nn.Irreps(f"{n0}x0e")

    def linear(irreps_in, irreps_out):
        return sum(mul_in * mul_out for mul_in, ir_in in irreps_in for mul_out, ir_out in irreps_out
                   if ir_in == ir_out)

    total = 1 + cfg.n_basis + s * n0  # r_max, frequencies, embedding
    h = scalars
    for b in range(cfg.n_blocks):
        out = scalars if b == cfg.n_blocks - 1 else hidden
        messages = e3nn.Irreps([(mul, ir) for mul, ir1 in h for ir2 in sphere for ir in ir1 * ir2
                                if ir in [i for _, i in out]]).regroup()
        total += cfg.n_basis * messages.num_irreps + linear(messages, out) + linear(h, out) + out.num_irreps
        if b == cfg.n_blocks - 1:
            total += 2 * n0 * n0
        else:
            total += linear(out, m * sphere) + 2 * m * cfg.mixer_hidden  # mixer in, per-head MLP
            total += 2 * n0 * n0 + linear(scalars + m * sphere, hidden)  # scalar MLP, mixer out
        total += out.num_irreps  # layer scale after the self-interaction
        h = out
    return total + n0 + 1 + 2 * s + 2  # head, species scale/shift, global scale/shift


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts(name):
    model = load(name)
    print(f"\n{name}: {model.n_parameters} parameters")
    assert model.n_parameters == expected_parameter_count(PRESETS[name])
    assert 10_000 <= model.n_parameters <= 300_000  # at most the paper's Facet-Small (~270k)


def test_s2_grid_round_trip_reproduces_band_limited_inputs():
    x = e3nn.normal(s2_irreps(2), jax.random.PRNGKey(0), (5, 3))
    values = to_grid(x, (18, 17))
    assert values.shape == (5, 3, 18, 17)
    np.testing.assert_allclose(from_grid(values, 2, (18, 17)).array, x.array, atol=1e-10)
    # and the grid values are the function sum_lm c_lm Y_lm (component-normalised) at the grid points
    signal = e3nn.to_s2grid(x, 18, 17, quadrature="gausslegendre", p_val=1, p_arg=-1)
    y = e3nn.spherical_harmonics(s2_irreps(2), signal.grid_vectors, normalize=True, normalization="component")
    np.testing.assert_allclose(values, jnp.einsum("nci,bai->ncba", x.array, y.array), atol=1e-10)


def mixer_equivariance_error(grid, seed=0):
    """Relative change of mixer(R x) vs R mixer(x) for random inputs and rotations."""
    mixer = S2MLPMixer(lmax=2, heads=2, hidden=16, grid=grid)
    x = e3nn.normal(s2_irreps(2), jax.random.PRNGKey(seed), (32, 8))
    params = mixer.init(jax.random.PRNGKey(seed + 1), x)
    rotation = e3nn.rand_matrix(jax.random.PRNGKey(seed + 2), ())
    rotated_in = mixer.apply(params, x.transform_by_matrix(rotation)).array
    rotated_out = mixer.apply(params, x).transform_by_matrix(rotation).array
    return float(jnp.linalg.norm(rotated_in - rotated_out) / jnp.linalg.norm(rotated_out))


def test_s2_mlp_mixer_equivariance_error_is_below_one_percent():
    errors = {grid: mixer_equivariance_error(grid) for grid in [(18, 17), (10, 9), (40, 39)]}
    print("\nS2-MLP-Mixer equivariance error:", {f"{b}x{a}": f"{e:.2e}" for (b, a), e in errors.items()})
    assert errors[(18, 17)] < 0.01  # the paper: < 1 % at 18 x 17
    assert errors[(40, 39)] < errors[(10, 9)]  # a finer grid aliases less: the error is real


def test_r_max_is_trainable_and_bounded_by_the_list_cutoff():
    cfg = FacetConfig(species=("H", "O"), cutoff=3.5, r_max=3.0, hidden="8x0e + 4x1o", lmax=1, n_blocks=2,
                      mixer_channels=4, mixer_heads=2, mixer_hidden=8, layer_scale_init=0.5)
    model = FacetModel.init(cfg)
    assert model.r_max == pytest.approx(3.0, rel=1e-6)
    s = water_box(6, seed=2)
    e0 = energy_and_forces(model, s)[0]
    # the energy depends on r_max smoothly: gradient with respect to the logit is finite, nonzero
    from nemd.models.blocks import batch_graph

    positions, numbers, graph = batch_graph([s], cfg.cutoff)

    def energy(logit):
        params = {**model.params, "r_max_logit": logit}
        return dataclasses.replace(model, params=params).graph_energies(jnp.asarray(positions),
                                                                        model.kinds(numbers), graph)[0]

    e, g = jax.jit(jax.value_and_grad(energy))(jnp.asarray(model.params["r_max_logit"]))
    assert np.isfinite(g) and g != 0 and float(e) == pytest.approx(e0)
    huge = dataclasses.replace(model, params={**model.params, "r_max_logit": jnp.asarray(50.0)})
    assert huge.r_max <= cfg.cutoff  # a sigmoid bound: never beyond the list cutoff
    with pytest.raises(ValueError, match="r_max"):
        FacetConfig(species=("H",), cutoff=3.0, r_max=3.5)


def test_average_degree_table_and_interpolation():
    boxes = [water_box(27, seed=0), water_box(16, seed=1)]
    table = average_degree_table(boxes, [2.0, 3.0, 4.0])
    from nemd.neighbors import build

    expected = sum(build(b.positions, b.cell, True, 3.0).senders.size for b in boxes) / sum(b.n_atoms for b in boxes)
    assert table[1] == (3.0, pytest.approx(expected))
    assert table[0][1] < table[1][1] < table[2][1]


def test_species_regression_initialisation():
    model = load("facet-small")
    counts = np.array([[2, 1], [4, 2], [10, 4], [6, 3], [3, 1]])
    mu = np.array([-13.6, -432.1])
    energies = counts @ mu + np.array([0.1, -0.2, 0.05, 0.0, 0.1])
    fitted = model.with_species_regression(counts, energies)
    np.testing.assert_allclose(fitted.params["species_shift"], np.linalg.lstsq(counts, energies, rcond=None)[0],
                               rtol=1e-5)
    assert np.all(np.asarray(fitted.params["species_scale"]) > 0)


def test_flat_envelope_is_one_below_the_onset_and_smooth_to_zero():
    from nemd.models.graph import flat_envelope

    r = jnp.linspace(0.0, 6.0, 601)
    e = np.asarray(flat_envelope(r, 5.0))
    assert np.all(e[r < 4.0] == 1.0) and np.all(e[r >= 5.0] == 0.0)
    assert np.all(np.diff(e) <= 0)  # monotone
    grad = jax.vmap(jax.grad(lambda x: flat_envelope(x, 5.0)))
    for order in (grad, jax.vmap(jax.grad(jax.grad(lambda x: flat_envelope(x, 5.0))))):
        values = np.asarray(order(jnp.array([3.99, 4.001, 4.999, 5.001])))
        assert np.all(np.isfinite(values)) and np.abs(values).max() < 1e-10  # derivatives vanish at both ends
    model = FacetModel.init(dataclasses.replace(PRESETS["facet-small"], envelope="polynomial"))
    assert model.n_parameters == expected_parameter_count(PRESETS["facet-small"])
    with pytest.raises(ValueError, match="envelope"):
        FacetConfig(species=("H",), envelope="cosine")
