"""Structural pruning of NEMP by irreps blocks (Wang et al. 2026, ../shared/papers), with
block importance from the energy-and-force loss (``nemd prune``).

NEMP's features live in channel spaces of C channels (``block_gate_shapes``): the
equivariant ones hold one irreps block per (order l, channel k), the invariant ones one
channel per k. A block is kept or removed whole, so the pruned model is exactly
equivariant. Pruning here is structural: the parameters of the kept channels and orders
are sliced into a smaller ``NEMPConfig`` (fewer ``channels``, lower ``lmax_node``, the CG
paths that remain), a normal model file; time and memory drop as for any model of that
size. Every channel space keeps its own most important channels (the spaces are
independent: channel mixings sit between them).

Importance of a block: the first-order Taylor score |z dL/dz| of a gate z = 1 on it,
accumulated over training batches (L: the training loss on energies and forces); the
baselines rank channels by the norm of the weights that touch them, or at random.

Layers are pruned from the top (``prune_layers``): every layer consumes the φ of the one
below, so only the last ones can go whole. Without its layer T the model reads the node
invariant that layer T computed from layer T-1's heads (eq. 8) as its final invariant: the
pruned model is the full one with a gate on what layer T adds to the readout at zero, and
that gate's Taylor score (``scores["layers"]``) is the layer's importance.

CG paths (l1, l2 -> l) of the node tensor product are a unit too (``prune_paths``): a
gate per path and layer scores them (``scores["paths"]``), every layer keeps the same
paths (summed scores), and the pruned config lists the paths it keeps (``cg_paths``).

Removing blocks changes the number of entries of φ that its RMS normalisation averages
over; the consumers of φ and the normalisation's ε are rescaled so that pruning blocks
whose values are zero leaves the energies unchanged.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..models.clebsch_gordan import cg_paths
from ..models.nemp import NEMPConfig, NEMPModel
from ..models.params_io import same_shapes
from .loss import loss_and_sums

METHODS = ("taylor", "weight-norm", "random")
LAYERS = "layers"  # the key of the layer scores (Taylor only) beside the channel spaces
PATHS = "paths"  # the key of the CG-path scores, (layers, paths) of the scored model
MODES = ("both", "channels", "orders")


def block_gate_shapes(cfg: NEMPConfig) -> dict:
    """The blocks ``atomic_energies`` can gate, each a channel space (C channels) of
    the network: equivariant ones (l, channel) per order l <= lmax_node, invariant ones
    (channel). ``pre``: layer-0 node features before mixing (eq. 5); ``rho0``: layer-0
    node invariants; ``e0a``/``e0b``: the two layer-0 edge-state pieces; ``phi_t``: the
    node features φ after layer t (t = 0..T); ``msg_t``: the CG product of layer t (its
    channels are those of the central and virtual nodes)."""
    p, c = cfg.lmax_node + 1, cfg.channels
    return {"pre": (p, c), "rho0": (c,), "e0a": (c,), "e0b": (c,),
            **{f"phi_{t}": (p, c) for t in range(cfg.n_layers + 1)},
            **{f"msg_{t}": (p, c) for t in range(1, cfg.n_layers + 1)}}


# ---- where every channel of every space sits in the parameters

def _labels(cfg: NEMPConfig) -> dict:
    """For every parameter, per axis: None (never pruned) or a list, one label per index:
    None (kept), ``(space, l, k)`` (l None for invariants and central harmonics) or
    ``("path", (l1, l2, l))``; and whether the axis consumes φ (rescaled by 1/γ)."""
    c, p, la, t_max, r = cfg.channels, cfg.lmax_node + 1, cfg.lmax + 1, cfg.n_layers, cfg.n_radial
    equi = lambda space: [(space, l, k) for l in range(p) for k in range(c)]  # noqa: E731
    inv = lambda space: [(space, None, k) for k in range(c)]  # noqa: E731
    heads = lambda space: [(space, l, k) for _ in range(3) for l in range(p) for k in range(c)]  # noqa: E731
    keep = lambda n: [None] * n  # noqa: E731
    labels = {
        "pair_coefficients": [None, inv("e0a") + keep(r)],
        "radial": (keep(2 * r), equi("pre") + inv("rho0") + inv("e0b")),
        "heads_0": (inv("e0a") + inv("e0b"), heads("phi_0")),
        "mix_0": [None, inv("pre"), inv("phi_0")],
        "readout": (inv("rho0") + sum((inv(f"phi_{t}") for t in range(t_max + 1)), []), None),
    }
    for t in range(1, t_max + 1):
        rows = inv("e0a") + inv("e0b") + sum((inv(f"phi_{s}") for s in range(t)), [])
        msg = equi(f"msg_{t}") + [(f"msg_{t}", None, k) for _ in range(la) for k in range(c)]
        labels[f"edge_{t}"] = (rows, msg + (heads(f"phi_{t}") if t < t_max else equi(f"phi_{t}")))
        labels[f"virtual_mix_{t}"] = [None, inv(f"phi_{t - 1}"), inv(f"msg_{t}")]
        labels[f"self_mix_{t}"] = [None, inv(f"phi_{t - 1}"), inv(f"phi_{t}")]
        labels[f"product_mix_{t}"] = [None, inv(f"msg_{t}"), inv(f"phi_{t}")]
        labels[f"path_weights_{t}"] = [None, [("path", q) for q in cg_paths(cfg.lmax, cfg.lmax_node, cfg.cg_paths)[0]],
                                       inv(f"msg_{t}")]
    return labels


def _consumer_axis(name: str) -> int | None:
    """The axis of parameter ``name`` that consumes φ (its φ entries are rescaled by 1/γ
    when φ loses entries): the inputs of the readout and edge networks, the mixings' rows."""
    if name == "readout" or name.startswith("edge_"):
        return 0
    return 1 if name.startswith(("virtual_mix_", "self_mix_")) else None


def _leaves(params, cfg):
    """(name, leaf key or None, array, axis labels) of every labelled parameter; an MLP's
    first kernel carries the input labels, its last kernel and bias the output labels."""
    for name, spec in _labels(cfg).items():
        if isinstance(spec, tuple):  # an MLP: (input labels, output labels)
            n = len([k for k in params[name] if k.startswith("kernel_")])
            for i in range(n):
                rows = spec[0] if i == 0 else None
                cols = spec[1] if i == n - 1 else None
                yield name, f"kernel_{i}", params[name][f"kernel_{i}"], [rows, cols]
                yield name, f"bias_{i}", params[name][f"bias_{i}"], [cols]
        else:
            yield name, None, params[name], spec


def _check(cfg: NEMPConfig):
    if not cfg.shared_edge_networks or cfg.edge_inputs != "coefficients":
        raise ValueError("pruning supports NEMP with shared edge networks and coefficient edge inputs (the presets)")


# ---- importance

def taylor_importance(model: NEMPModel, batches, energy_weight: float = 1.0, force_weight: float = 100.0) -> dict:
    """Σ over ``batches`` of |z dL/dz| at z = 1 for a gate z on every block
    (``block_gate_shapes``), on what each layer adds to the readout (``LAYERS``, (T,)) and
    on each layer's CG paths (``PATHS``, (T, paths)): L is the training loss on energies
    and forces."""
    shapes = {**block_gate_shapes(model.config), LAYERS: (model.config.n_layers,), PATHS: _path_shape(model.config)}
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), model.params)
    n_kinds = len(model.species)

    @jax.jit
    def score(gates, batch):
        loss = lambda g: loss_and_sums(dataclasses.replace(model, gates=g), params, batch,  # noqa: E731
                                       energy_weight, force_weight, n_kinds)[0]
        return jax.tree_util.tree_map(jnp.abs, jax.grad(loss)(gates))

    ones = {k: jnp.ones(s, jnp.float32) for k, s in shapes.items()}
    total = {k: np.zeros(s) for k, s in shapes.items()}
    for batch in batches:
        for k, v in score(ones, batch).items():
            total[k] += np.asarray(v, np.float64)
    return total


def weight_norm_importance(model: NEMPModel) -> dict:
    """Per channel of every space: the norm of all weights that touch it (a baseline),
    the same for every order of an equivariant space."""
    cfg = model.config
    _check(cfg)
    sq = {k: np.zeros(cfg.channels) for k in block_gate_shapes(cfg)}
    for _, _, array, axes in _leaves(model.params, cfg):
        array = np.asarray(array)
        for axis, labels in enumerate(axes):
            for i, label in enumerate(labels or ()):
                if label is not None and label[0] != "path":
                    sq[label[0]][label[2]] += float(np.sum(np.take(array, i, axis=axis) ** 2))
    paths = np.stack([np.sqrt(np.sum(np.asarray(model.params[f"path_weights_{t}"]) ** 2, axis=(0, 2)))
                      for t in range(1, cfg.n_layers + 1)])
    return {**{k: np.broadcast_to(np.sqrt(v), s).copy() for (k, v), s in
               zip(sq.items(), block_gate_shapes(cfg).values())}, PATHS: paths}


def random_importance(model: NEMPModel, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {**block_gate_shapes(model.config), PATHS: _path_shape(model.config)}
    return {k: rng.random(s) for k, s in shapes.items()}


def _path_shape(cfg: NEMPConfig) -> tuple[int, int]:
    return cfg.n_layers, len(cg_paths(cfg.lmax, cfg.lmax_node, cfg.cg_paths)[0])


def order_importance(scores: dict) -> np.ndarray:
    """Importance of each order l: the sum over the equivariant blocks of that order."""
    return np.sum([v for k, v in scores.items() if v.ndim == 2 and k != PATHS], axis=(0, 2))


def path_importance(scores: dict, config: NEMPConfig, n_layers: int | None = None) -> dict:
    """{(l1, l2, l): score} of the CG paths of the scored model's ``config``, summed over
    its first ``n_layers`` layers (all by default: every layer uses the same paths)."""
    paths = cg_paths(config.lmax, config.lmax_node, config.cg_paths)[0]
    total = np.asarray(scores[PATHS])[:n_layers].sum(axis=0)
    return {q: float(v) for q, v in zip(paths, total)}


# ---- structural pruning

def kept_channels(scores: dict, channels: int, lmax_node: int) -> dict:
    """The ``channels`` most important channels of every space (sorted indices), scored
    over the orders that remain (l <= ``lmax_node``)."""
    out = {}
    for space, s in scores.items():
        if space in (LAYERS, PATHS):
            continue
        per_channel = s[:lmax_node + 1].sum(axis=0) if s.ndim == 2 else s
        out[space] = np.sort(np.argsort(-per_channel, kind="stable")[:channels])
    return out


def prune(model: NEMPModel, keep: dict, lmax_node: int) -> NEMPModel:
    """``model`` sliced to the channels ``keep[space]`` (the same number in every space)
    and node orders l <= ``lmax_node``: a smaller NEMP of its own config."""
    cfg = model.config
    _check(cfg)
    sizes = {len(v) for v in keep.values()}
    if len(sizes) != 1 or set(keep) != set(block_gate_shapes(cfg)):
        raise ValueError(f"keep must give the same number of channels for each of {sorted(block_gate_shapes(cfg))}")
    new_c = sizes.pop()
    if not 1 <= new_c <= cfg.channels or not 0 <= lmax_node <= cfg.lmax_node:
        raise ValueError(f"cannot prune {cfg.channels} channels, lmax_node {cfg.lmax_node} to {new_c}, {lmax_node}")
    p_old, p_new = cfg.lmax_node + 1, lmax_node + 1
    shrink = p_new**2 * new_c / (p_old**2 * cfg.channels)  # φ's RMS averages over fewer entries:
    gamma = math.sqrt(shrink)  # φ grows by 1/γ, its consumers shrink by γ, ε grows by 1/shrink
    old_paths = cg_paths(cfg.lmax, cfg.lmax_node, cfg.cg_paths)[0]
    new_paths = [q for q in old_paths if q[1] <= lmax_node and q[2] <= lmax_node]
    new = dataclasses.replace(cfg, channels=new_c, lmax_node=lmax_node, rms_epsilon=cfg.rms_epsilon / shrink,
                              cg_paths=None if cfg.cg_paths is None else tuple(new_paths))
    path_factor = _path_rescale(old_paths, new_paths)
    kept = {k: set(v.tolist()) for k, v in keep.items()}

    def selected(label):
        if label is None:
            return True
        if label[0] == "path":
            return label[1] in new_paths
        space, l, k = label
        return k in kept[space] and (l is None or l <= lmax_node)

    source = jax.tree_util.tree_map(np.asarray, dict(model.params))
    params = dict(source)
    for name, key, array, axes in _leaves(source, cfg):
        out = np.array(array)
        for axis, labels in enumerate(axes):
            if labels is None:
                continue
            if _consumer_axis(name) == axis and key in (None, "kernel_0"):
                factor = np.array([1 / gamma if lab is not None and lab[0].startswith("phi_") else 1.0
                                   for lab in labels])
                out = out * np.expand_dims(factor, tuple(a for a in range(out.ndim) if a != axis))
            if labels and labels[0] is not None and labels[0][0] == "path":  # paths into l: 1/sqrt(count) each
                factor = np.array([path_factor.get(q, 0.0) for _, q in labels])
                out = out * np.expand_dims(factor, tuple(a for a in range(out.ndim) if a != axis))
            out = np.take(out, [i for i, lab in enumerate(labels) if selected(lab)], axis=axis)
        if key is None:
            params[name] = out
        else:
            params[name] = {**params[name], key: out}
    params = jax.tree_util.tree_map(jnp.asarray, params)
    pruned = NEMPModel(new, params, None, model.block_atoms, model.store_edges)
    assert same_shapes(jax.eval_shape(pruned.make_module(2).init, *NEMPModel._init_args(0))["params"], params)
    return pruned


def prune_layers(model: NEMPModel, n_layers: int) -> NEMPModel:
    """``model`` with its first ``n_layers`` message-passing layers only: the last kept
    layer's edge network keeps the node head of its heads (the other two fed the removed
    layer's edge invariants) and the readout the rows of the invariants that remain.
    Exactly ``model`` with ``gates["layers"]`` of the removed layers at zero."""
    cfg = model.config
    _check(cfg)
    if not 1 <= n_layers <= cfg.n_layers:
        raise ValueError(f"cannot keep {n_layers} of {cfg.n_layers} message-passing layers (at least 1)")
    c, p, la = cfg.channels, cfg.lmax_node + 1, cfg.lmax + 1
    removed = {f"{name}_{t}" for t in range(n_layers + 1, cfg.n_layers + 1)
               for name in ("edge", "virtual_mix", "self_mix", "product_mix", "path_weights")}
    params = {k: v for k, v in jax.tree_util.tree_map(np.asarray, dict(model.params)).items() if k not in removed}
    if n_layers < cfg.n_layers:
        edge, last = dict(params[f"edge_{n_layers}"]), len([k for k in params[f"edge_{n_layers}"] if "kernel" in k]) - 1
        split = (p + la) * c  # coefficients, then heads (3, P, C): edge i, edge j, node (eq. 7-8)
        cols = np.r_[0:split, split + 2 * p * c:split + 3 * p * c]
        edge[f"kernel_{last}"], edge[f"bias_{last}"] = edge[f"kernel_{last}"][:, cols], edge[f"bias_{last}"][cols]
        params[f"edge_{n_layers}"] = edge
        params["readout"] = {**params["readout"], "kernel_0": params["readout"]["kernel_0"][:(n_layers + 2) * c]}
    params = jax.tree_util.tree_map(jnp.asarray, params)
    pruned = NEMPModel(dataclasses.replace(cfg, n_layers=n_layers), params, None, model.block_atoms,
                       model.store_edges)
    assert same_shapes(jax.eval_shape(pruned.make_module(2).init, *NEMPModel._init_args(0))["params"], params)
    return pruned


def kept_paths(scores: dict, config: NEMPConfig, pruned: NEMPConfig, drop: int) -> tuple:
    """The CG paths of ``pruned`` (a pruning of the scored model's ``config``) without its
    ``drop`` least important ones (``path_importance`` over ``pruned``'s layers), keeping
    the most important path into every node order l."""
    score = path_importance(scores, config, pruned.n_layers)
    paths = cg_paths(pruned.lmax, pruned.lmax_node, pruned.cg_paths)[0]
    best = {l: max((q for q in paths if q[2] == l), key=score.get) for l in range(pruned.lmax_node + 1)}
    removable = sorted((q for q in paths if q not in best.values()), key=score.get)
    if not 0 <= drop <= len(removable):
        raise ValueError(f"cannot drop {drop} of {len(paths)} CG paths: every node order l <= {pruned.lmax_node} "
                         f"keeps one, so at most {len(removable)} can go")
    gone = set(removable[:drop])
    return tuple(q for q in paths if q not in gone)


def prune_paths(model: NEMPModel, paths) -> NEMPModel:
    """``model`` with the CG paths ``paths`` (l1, l2, l) of its tensor product only, in
    every layer: their weights, times sqrt(kept / all paths into l) (the product is divided
    by sqrt(paths into l)), so removing paths whose weights are zero changes nothing."""
    cfg = model.config
    _check(cfg)
    old = cg_paths(cfg.lmax, cfg.lmax_node, cfg.cg_paths)[0]
    keep = {tuple(q) for q in paths}
    if not keep <= set(old):
        raise ValueError(f"paths {sorted(keep - set(old))} are not CG paths of this model")
    new = dataclasses.replace(cfg, cg_paths=tuple(q for q in old if q in keep))  # checks every l keeps a path
    index = [i for i, q in enumerate(old) if q in keep]
    rescale = _path_rescale(old, new.cg_paths)
    factor = np.array([rescale[q] for q in new.cg_paths])
    params = jax.tree_util.tree_map(np.asarray, dict(model.params))
    for t in range(1, cfg.n_layers + 1):
        params[f"path_weights_{t}"] = params[f"path_weights_{t}"][:, index] * factor[None, :, None]
    params = jax.tree_util.tree_map(jnp.asarray, params)
    pruned = NEMPModel(new, params, None, model.block_atoms, model.store_edges)
    assert same_shapes(jax.eval_shape(pruned.make_module(2).init, *NEMPModel._init_args(0))["params"], params)
    return pruned


def _path_rescale(old, new) -> dict:
    """{kept path: sqrt(paths into its l kept / before)}: the product into l is divided by
    sqrt(paths into l), so kept weights times this give the same product without the rest."""
    into = lambda paths, l: sum(1 for q in paths if q[2] == l)  # noqa: E731
    return {q: math.sqrt(into(new, q[2]) / into(old, q[2])) for q in new}


def parameter_count(config: NEMPConfig) -> int:
    shapes = jax.eval_shape(NEMPModel(config, {}).make_module(2).init, *NEMPModel._init_args(0))["params"]
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes))


def kept_importance(scores: dict, keep: dict, lmax_node: int) -> float:
    """The importance a pruning keeps: the sum of the scores of its blocks (to first order
    in the Taylor score, the loss it does not lose)."""
    return float(sum((s[:lmax_node + 1] if s.ndim == 2 else s)[..., keep[k]].sum() for k, s in scores.items()
                     if k in keep))


def target_shape(config: NEMPConfig, target_params: int, mode: str = "both", scores: dict | None = None
                 ) -> tuple[int, int]:
    """(channels, lmax_node) of a pruned config with at most ``target_params`` parameters:
    the largest, or with ``scores`` (block importance) the one that keeps the most
    importance, e.g. fewer channels up to l = 2 rather than more up to l = 1 when l = 2
    matters. ``mode`` "channels" keeps lmax_node, "orders" keeps the channels."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    channels = [config.channels] if mode == "orders" else range(1, config.channels + 1)
    orders = [config.lmax_node] if mode == "channels" else range(config.lmax_node + 1)
    options = [(parameter_count(dataclasses.replace(config, channels=c, lmax_node=l)), c, l)
               for c in channels for l in orders]
    fitting = [o for o in options if o[0] <= target_params]
    if not fitting:
        smallest = min(options)[0]
        raise ValueError(f"no {mode} pruning of this model has <= {target_params} parameters (smallest: {smallest})")
    if scores is None:
        _, c, l = max(fitting)
    else:
        _, c, l = max(fitting, key=lambda o: (kept_importance(scores, kept_channels(scores, o[1], o[2]), o[2]), o[0]))
    return c, l
