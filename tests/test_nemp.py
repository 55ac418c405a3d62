"""NEMP specifics: preset parameter counts and the parity of its CG paths.

The energy-function contract (symmetry, forces, smoothness, batching, precision, I/O)
is tested for every graph model in test_graph_models.py.
"""

import dataclasses

import pytest

from nemd.models.clebsch_gordan import cg_paths
from nemd.models.nemp import PRESETS, NEMPConfig, NEMPModel


def expected_parameter_count(cfg: NEMPConfig) -> int:
    """Parameters implied by the configuration, counted independently of flax."""
    s, p, c, nr = len(cfg.species), cfg.pair_features, cfg.channels, cfg.n_radial
    hidden = (cfg.edge_hidden,) * cfg.edge_layers
    n_l, n_la, t = cfg.lmax_node + 1, cfg.lmax + 1, cfg.n_layers
    dense = lambda i, o: i * o + o  # noqa: E731
    mlp = lambda i, *widths: sum(dense(a, b) for a, b in zip((i,) + widths[:-1], widths))  # noqa: E731
    n_paths = len(cg_paths(cfg.lmax, cfg.lmax_node)[0])
    width0 = 2 * c if cfg.edge_inputs == "coefficients" else p + nr
    total = mlp(2 * s, p, p) + dense(p, nr) + p * (nr + c)  # pair embedding, frequencies, coefficients
    total += mlp(2 * nr, *hidden, c * (n_l + 2)) + s * c * c  # layer-0 edge network, mixing
    total += mlp(width0, *hidden, 3 * n_l * c)  # layer-0 heads of the edge and node invariants
    for layer in range(1, t + 1):
        heads = (n_l if layer == t else 3 * n_l) * c  # the last layer's: the final node head
        if cfg.shared_edge_networks:
            total += mlp(width0 + layer * c, *hidden, c * (n_l + n_la) + heads)
        else:
            total += mlp(width0 + layer * c, *hidden, c * (n_l + n_la)) + mlp(width0 + layer * c, *hidden, heads)
        total += 3 * s * c * c + s * n_paths * c
    total += mlp(c * (t + 2), cfg.readout_hidden, cfg.readout_hidden, 1) + 2 * s
    return total


def parameter_count(config: NEMPConfig) -> int:
    """Parameters flax creates for ``config`` (shapes only: nothing is compiled)."""
    import jax
    import numpy as np

    module = NEMPModel(config, {}).make_module(2)
    shapes = jax.eval_shape(module.init, *NEMPModel._init_args(0))["params"]
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts(name):
    print(f"\n{name}: {parameter_count(PRESETS[name])} parameters")
    assert parameter_count(PRESETS[name]) == expected_parameter_count(PRESETS[name])
    for variant in (dict(edge_inputs="basis"), dict(edge_layers=2), dict(shared_edge_networks=False)):
        config = dataclasses.replace(PRESETS[name], **variant)
        assert parameter_count(config) == expected_parameter_count(config)


def test_parity_preserving_paths_only():
    paths, cg = cg_paths(2, 2)
    assert all((a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b for a, b, c in paths)
    assert (1, 1, 1) not in paths and (0, 0, 0) in paths and len(paths) == 11
    assert cg.shape == (11, 9, 9, 9)


def test_bad_config():
    with pytest.raises(ValueError, match="cannot exceed"):
        NEMPConfig(species=("H",), lmax=1, lmax_node=2)
    with pytest.raises(ValueError, match="unknown species"):
        NEMPConfig(species=("H", "Xx"))
    with pytest.raises(ValueError, match="normalization"):
        NEMPConfig(species=("H",), normalization="mean")
    with pytest.raises(ValueError, match="edge_inputs"):
        NEMPConfig(species=("H",), edge_inputs="raw")


def test_normalisation_and_edge_input_variants_differ_from_the_default():
    """The faithful defaults and the earlier choices are different functions (same
    parameters where they share them), so the config switch really switches."""
    import jax.numpy as jnp
    import numpy as np

    from nemd.io import water_box
    from nemd.models.evaluate import energy_and_forces

    base = NEMPConfig(species=("H", "O"), cutoff=3.5, channels=4, n_radial=4, lmax=1, lmax_node=1, n_layers=1,
                      pair_features=8, edge_hidden=8, readout_hidden=8)
    s = water_box(6, seed=4)
    energies = {}
    for variant in (dict(), dict(normalization="constant", avg_neighbors=20.0), dict(edge_inputs="basis"),
                    dict(shared_edge_networks=False)):
        model = NEMPModel.init(dataclasses.replace(base, **variant), seed=2)
        e, f = energy_and_forces(model, s, dtype=jnp.float64)
        assert np.isfinite(e) and np.all(np.isfinite(f))
        energies[str(variant)] = e
    assert len({round(e, 10) for e in energies.values()}) == len(energies)
