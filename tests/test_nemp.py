"""NEMP specifics: preset parameter counts and the parity of its CG paths.

The energy-function contract (symmetry, forces, smoothness, batching, precision, I/O)
is tested for every graph model in test_graph_models.py.
"""

import pytest

from nemd.models import load
from nemd.models.nemp import PRESETS, NEMPConfig, _cg_paths


def expected_parameter_count(cfg: NEMPConfig) -> int:
    """Parameters implied by the configuration, counted independently of flax."""
    s, p, c, h, nr = len(cfg.species), cfg.pair_features, cfg.channels, cfg.edge_hidden, cfg.n_radial
    n_l, n_la, t = cfg.lmax_node + 1, cfg.lmax + 1, cfg.n_layers
    dense = lambda i, o: i * o + o  # noqa: E731
    mlp = lambda i, *widths: sum(dense(a, b) for a, b in zip((i,) + widths[:-1], widths))  # noqa: E731
    n_paths = len(_cg_paths(cfg.lmax, cfg.lmax_node)[0])
    total = mlp(2 * s, p, p) + dense(p, nr)
    total += mlp(p + nr, h, h, c * (4 * n_l + 1)) + s * c * c
    for layer in range(1, t + 1):
        total += mlp(p + nr + layer * c, h, h, c * (n_la + 4 * n_l))
        total += 3 * s * c * c + s * n_paths * c
    total += mlp(c * (t + 2), cfg.readout_hidden, cfg.readout_hidden, 1) + 2 * s
    return total


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts(name):
    model = load(name)
    print(f"\n{name}: {model.n_parameters} parameters")
    assert model.n_parameters == expected_parameter_count(PRESETS[name])
    assert 40_000 <= model.n_parameters <= 500_000  # the paper's range (~50k-500k)


def test_parity_preserving_paths_only():
    paths, cg = _cg_paths(2, 2)
    assert all((a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b for a, b, c in paths)
    assert (1, 1, 1) not in paths and (0, 0, 0) in paths and len(paths) == 11
    assert cg.shape == (11, 9, 9, 9)


def test_bad_config():
    with pytest.raises(ValueError, match="cannot exceed"):
        NEMPConfig(species=("H",), lmax=1, lmax_node=2)
    with pytest.raises(ValueError, match="unknown species"):
        NEMPConfig(species=("H", "Xx"))
