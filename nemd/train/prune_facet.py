"""Structural pruning of Facet by irreps channels (``nemd prune`` on a Facet model; the
NEMP counterpart is ``nemd.train.prune``).

Facet's units (``unit_shapes``): the channels of its residual stream per order l
(``hidden_l``: one irreps block (l, k) each, kept or removed whole, so the pruned model is
exactly equivariant), the channels of each S2-MLP-Mixer (``mixer_b``: one function on the
sphere each, kept per head) and the units of the scalar MLPs (``mlp_*``, as wide as the
scalars). Pruning slices the parameters into a smaller ``FacetConfig`` (fewer irreps per
l in ``hidden``, an order dropped when none of its channels remain, fewer
``mixer_channels``): a normal model file.

Importance of a unit: the first-order Taylor score |z dL/dz| of a gate z on everything
written into it, which for units written by linear maps is |Σ w dL/dw| over the weights
that write them (no change to the model); summed over training batches.

Exactness: e3nn's linear maps divide by their fan-in and the layer norms of l > 0 average
over the channels, so kept weights, layer scales and the norms' epsilon are rescaled: pruning
l > 0 blocks, mixer channels or MLP units that carry zeros leaves energies and forces
unchanged. Scalar channels of the stream cannot be removed exactly (the layer norm centres
the scalars over channels, so a zero channel still shifts the others' mean): pruning them
is an approximation that fine-tuning recovers.
"""

from __future__ import annotations

import dataclasses
import math
import re

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from ..models.facet import FacetConfig, FacetModel, s2_irreps
from ..models.params_io import same_shapes
from .loss import loss_and_sums

_LINEAR_KEY = re.compile(r"w\[\d+,\d+\] (\d+)x(\d)([eo]),(\d+)x(\d)([eo])")


def orders(cfg: FacetConfig) -> dict:
    """{l: channels of order l} of the hidden irreps."""
    out = {}
    for mul, ir in e3nn.Irreps(cfg.hidden).simplify():
        if ir.l in out:
            raise ValueError(f"pruning needs one entry per order in hidden irreps, got {cfg.hidden}")
        out[ir.l] = mul
    return out


def unit_shapes(cfg: FacetConfig) -> dict:
    """The prunable channel spaces and their sizes (see the module docstring)."""
    n = orders(cfg)
    shapes = {f"hidden_{l}": (c,) for l, c in n.items()}
    for b in range(cfg.n_blocks - 1):
        shapes.update({f"mixer_{b}": (cfg.mixer_channels,), f"mlp_{b}_hidden": (n[0],), f"mlp_{b}_out": (n[0],)})
    shapes["mlp_last_hidden"] = (n[0],)
    return shapes


def _hidden(space_orders: dict, l: int):
    return [(f"hidden_{l}", k) for k in range(space_orders[l])]


def _message_labels(h_irreps: e3nn.Irreps, cfg: FacetConfig, out_irreps: e3nn.Irreps) -> dict:
    """{l_out: the stream channel (label) each message irrep of order l_out comes from}, found
    by probing e3nn's tensor product with one channel at a time (its output layout)."""
    rng = np.random.default_rng(0)
    x = np.zeros((h_irreps.num_irreps, h_irreps.dim))
    labels, row = [], 0
    for (mul, ir), sl in zip(h_irreps, h_irreps.slices()):
        for k in range(mul):
            x[row, sl.start + k * ir.dim: sl.start + (k + 1) * ir.dim] = rng.normal(size=ir.dim)
            labels.append((f"hidden_{ir.l}", k))
            row += 1
    y = np.broadcast_to(rng.normal(size=s2_irreps(cfg.lmax).dim), (len(x), s2_irreps(cfg.lmax).dim))
    tp = e3nn.tensor_product(e3nn.IrrepsArray(h_irreps, x), e3nn.IrrepsArray(s2_irreps(cfg.lmax), y),
                             filter_ir_out=out_irreps)
    out = {}
    for (mul, ir), chunk in zip(tp.irreps, tp.chunks):
        source = np.argmax(np.linalg.norm(np.asarray(chunk), axis=-1), axis=0)  # (mul,) probing row
        out[ir.l] = [(*labels[i], ir.l) for i in source]  # the message exists while order l does
    return out


def _linear(params: dict, inputs: dict, outputs: dict, produces: bool = False):
    """Specs of an e3nn Linear's weights from labels per input and output order l."""
    specs = []
    for key in params:
        m = _LINEAR_KEY.fullmatch(key)
        if not m:
            raise ValueError(f"unexpected Linear parameter {key!r}")
        l_in, l_out = int(m.group(2)), int(m.group(5))
        specs.append(dict(key=key, axes=[inputs[l_in], outputs[l_out]], fan_in=(0, l_out),
                          produces=[1] if produces else []))
    return specs


def _specs(cfg: FacetConfig, params: dict):
    """(parameter path, per-axis labels (None: untouched), fan-in group, producing axes)
    for every labelled parameter."""
    n = orders(cfg)
    hid = {l: _hidden(n, l) for l in n}
    scalars, hidden = e3nn.Irreps(f"{n[0]}x0e"), e3nn.Irreps(cfg.hidden)
    specs = [dict(path=("embedding",), axes=[None, hid[0]], produces=[1]),
             dict(path=("head", "kernel"), axes=[hid[0], None])]
    last = cfg.n_blocks - 1

    def add(prefix, entries):
        for e in entries:
            key = e.pop("key")
            fan_in = e.get("fan_in")
            specs.append(dict(e, path=(*prefix, key), fan_in=None if fan_in is None else (prefix, fan_in[1])))

    for b in range(cfg.n_blocks):
        h_irreps = scalars if b == 0 else hidden
        out = {0: hid[0]} if b == last else hid
        h_in = {l: hid[l] for l in ({0} if b == 0 else n)}
        messages = _message_labels(h_irreps, cfg, scalars if b == last else hidden)
        specs.append(dict(path=(f"interaction_{b}", "spline"), axes=[None, sum(messages.values(), [])]))
        add((f"interaction_{b}", "mix"), _linear(params[f"interaction_{b}"]["mix"], messages, out))
        add((f"interaction_{b}", "self_connection"),
            _linear(params[f"interaction_{b}"]["self_connection"], h_in, out))
        written = sum(out.values(), [])
        for part in "ab":
            specs.append(dict(path=(f"residual_{b}{part}", "layer_scale"), axes=[written], produces=[0],
                              layer_scale=True))
        if b == last:
            mlp = [("scalar_mlp",), hid[0], [("mlp_last_hidden", k) for k in range(n[0])], hid[0]]
        else:
            si = f"self_interaction_{b}"
            mixer = [(f"mixer_{b}", k) for k in range(cfg.mixer_channels)]
            add((si, "mixer_in"), _linear(params[si]["mixer_in"], hid, {l: mixer for l in range(cfg.lmax + 1)},
                                          produces=True))
            specs.append(dict(path=(si, "mixer", "w1"), axes=[mixer, None], heads=cfg.mixer_heads))
            specs.append(dict(path=(si, "mixer", "w2"), axes=[mixer, None], heads=cfg.mixer_heads, produces=[0]))
            mlp_out = [(f"mlp_{b}_out", k) for k in range(n[0])]
            mixer_out_in = {l: (mlp_out if l == 0 else []) + mixer for l in range(cfg.lmax + 1)}
            add((si, "mixer_out"), _linear(params[si]["mixer_out"], mixer_out_in, hid))
            mlp = [(si, "scalar_mlp"), hid[0], [(f"mlp_{b}_hidden", k) for k in range(n[0])], mlp_out]
        prefix, first, middle, last_out = mlp
        specs.append(dict(path=(*prefix, "Dense_0", "kernel"), axes=[first, middle], produces=[1],
                          fan_in=(prefix + ("Dense_0",), 0)))
        specs.append(dict(path=(*prefix, "Dense_1", "kernel"), axes=[middle, last_out],
                          produces=[1] if b != last else [], fan_in=(prefix + ("Dense_1",), 0)))
    return specs


def _get(params, path):
    for key in path:
        params = params[key]
    return params


def _set(params, path, value):
    for key in path[:-1]:
        params = params[key]
    params[path[-1]] = value


def _rows(array, spec, axis):
    """``array`` with the labelled axis first and flat (the mixer's (heads, c, ...) weights)."""
    if "heads" in spec:  # w1 (heads, c, hidden), w2 (heads, hidden, c): channel k = head * c + index
        a = array if spec["path"][-1] == "w1" else np.swapaxes(array, 1, 2)
        return a.reshape(-1, a.shape[-1])
    return np.moveaxis(array, axis, 0)


def _unrows(rows, spec, axis):
    if "heads" in spec:
        a = rows.reshape(spec["heads"], -1, rows.shape[-1])
        return a if spec["path"][-1] == "w1" else np.swapaxes(a, 1, 2)
    return np.moveaxis(rows, 0, axis)


# ---- importance

def taylor_importance(model: FacetModel, batches, energy_weight: float = 1.0, force_weight: float = 100.0) -> dict:
    """Σ over ``batches`` of |Σ w dL/dw| over the weights that write each unit (= |z dL/dz|
    for a gate z on the unit's input): L is the training loss on energies and forces."""
    specs = _specs(model.config, model.params)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), model.params)
    n_kinds = len(model.species)
    grad = jax.jit(jax.grad(lambda p, batch: loss_and_sums(model, p, batch, energy_weight, force_weight, n_kinds)[0]))
    total = {k: np.zeros(s) for k, s in unit_shapes(model.config).items()}
    for batch in batches:
        g = grad(params, batch)
        per_batch = {k: np.zeros_like(v) for k, v in total.items()}
        for spec in specs:
            for axis in spec.get("produces", []):
                wg = np.asarray(_get(params, spec["path"])) * np.asarray(_get(g, spec["path"]))
                flat = _rows(wg, spec, axis).reshape(len(spec["axes"][axis]), -1).sum(axis=1)
                for label, v in zip(spec["axes"][axis], flat):
                    per_batch[label[0]][label[1]] += v
        for k in total:
            total[k] += np.abs(per_batch[k])
    return total


def weight_norm_importance(model: FacetModel) -> dict:
    """Per unit: the norm of all weights that touch it (a baseline)."""
    sq = {k: np.zeros(s) for k, s in unit_shapes(model.config).items()}
    for spec in _specs(model.config, model.params):
        array = np.asarray(_get(model.params, spec["path"]))
        for axis, labels in enumerate(spec["axes"]):
            if labels is not None:
                per = (_rows(array, spec, axis) ** 2).reshape(len(labels), -1).sum(axis=1)
                for label, v in zip(labels, per):
                    sq[label[0]][label[1]] += v
    return {k: np.sqrt(v) for k, v in sq.items()}


def random_importance(model: FacetModel, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.random(s) for k, s in unit_shapes(model.config).items()}


def order_importance(scores: dict) -> np.ndarray:
    """Importance of each order l of the stream: the sum of its channels' scores."""
    return np.array([scores[f"hidden_{l}"].sum() for l in range(len([k for k in scores if k.startswith("hidden_")]))])


# ---- structural pruning

def kept_units(scores: dict, cfg: FacetConfig, hidden: dict, mixer_channels: int) -> dict:
    """The most important units of every space: ``hidden`` {l: channels} (0: drop the order),
    ``mixer_channels`` per mixer (the same number from each head), MLPs as wide as l = 0."""
    out = {}
    for space, s in scores.items():
        if space.startswith("hidden_"):
            n = hidden.get(int(space.split("_")[1]), 0)
        elif space.startswith("mixer_"):
            if mixer_channels % cfg.mixer_heads:
                raise ValueError(f"mixer_channels must be a multiple of the {cfg.mixer_heads} heads")
            per = cfg.mixer_channels // cfg.mixer_heads
            top = [h * per + np.argsort(-s[h * per:(h + 1) * per], kind="stable")[:mixer_channels // cfg.mixer_heads]
                   for h in range(cfg.mixer_heads)]
            out[space] = np.sort(np.concatenate(top))
            continue
        else:
            n = hidden[0]
        out[space] = np.sort(np.argsort(-s, kind="stable")[:n])
    return out


def pruned_config(cfg: FacetConfig, hidden: dict, mixer_channels: int) -> FacetConfig:
    """``cfg`` with ``hidden`` {l: channels} and ``mixer_channels``; the layer norms'
    epsilon of l > 0 grows as its channels shrink (exactness for zero channels)."""
    old = orders(cfg)
    if hidden.get(0, 0) < 1 or any(not 0 <= hidden.get(l, 0) <= c for l, c in old.items()) or set(hidden) - set(old):
        raise ValueError(f"cannot prune hidden irreps {cfg.hidden} to {hidden} channels per order")
    if not 1 <= mixer_channels <= cfg.mixer_channels:
        raise ValueError(f"cannot prune {cfg.mixer_channels} mixer channels to {mixer_channels}")
    eps = cfg.norm_epsilon or (1e-6,) * len(old)
    lmax = max(l for l in old if hidden.get(l, 0) > 0)
    if any(hidden.get(l, 0) < 1 for l in range(lmax + 1)):
        raise ValueError(f"orders can only be dropped from the top, got {hidden} channels per order")
    irreps = " + ".join(f"{hidden[l]}x{ir}" for l, ir in ((l, e3nn.Irrep(l, (-1) ** l)) for l in range(lmax + 1)))
    epsilon = tuple(eps[l] * (old[l] / hidden[l] if l > 0 else 1.0) for l in range(lmax + 1))
    return dataclasses.replace(cfg, hidden=irreps, mixer_channels=mixer_channels, norm_epsilon=epsilon)


def prune(model: FacetModel, keep: dict) -> FacetModel:
    """``model`` sliced to the units ``keep[space]`` (``kept_units``): a smaller Facet."""
    cfg = model.config
    hidden = {int(s.split("_")[1]): len(v) for s, v in keep.items() if s.startswith("hidden_")}
    widths = {len(v) for s, v in keep.items() if s.startswith("mlp_")} | {hidden.get(0)}
    mixers = {len(v) for s, v in keep.items() if s.startswith("mixer_")} or {cfg.mixer_channels}
    if set(keep) != set(unit_shapes(cfg)) or len(widths) != 1 or len(mixers) != 1:
        raise ValueError(f"keep must hold every unit space {sorted(unit_shapes(cfg))}, the MLPs as wide as l = 0 "
                         "and the same number of channels in every mixer")
    hidden_new = {l: c for l, c in hidden.items() if c > 0}
    new = pruned_config(cfg, hidden_new, mixers.pop())
    old_n = orders(cfg)
    kept = {k: set(np.asarray(v).tolist()) for k, v in keep.items()}

    def selected(labels):  # a message (3 entries) goes with its order l too
        return [i for i, lab in enumerate(labels) if lab[1] in kept[lab[0]] and (len(lab) == 2 or lab[2] in hidden_new)]

    specs = _specs(cfg, model.params)
    fan = {}  # fan-in group -> [old, new] rows
    for spec in specs:
        if spec.get("fan_in"):
            rows = spec["axes"][0]
            f = fan.setdefault(spec["fan_in"], [0, 0])
            f[0] += len(rows)
            f[1] += len(selected(rows))
    params = jax.tree_util.tree_map(np.array, model.params)  # a copy: paths are popped below
    for spec in specs:
        array = np.asarray(_get(params, spec["path"]), np.float64)
        if spec.get("fan_in") and fan[spec["fan_in"]][1] == 0:  # no input left: the path goes
            _get(params, spec["path"][:-1]).pop(spec["path"][-1])
            continue
        if spec.get("fan_in"):
            old, new_rows = fan[spec["fan_in"]]
            array = array * math.sqrt(new_rows / old)
        if spec.get("layer_scale"):  # the norm of order l > 0 averages over fewer channels
            array = array * np.array([math.sqrt(old_n[int(s[7:])] / max(hidden.get(int(s[7:]), 1), 1))
                                      if not s.endswith("_0") else 1.0 for s, _ in spec["axes"][0]])
        for axis, labels in enumerate(spec["axes"]):
            if labels is not None:
                rows = _rows(array, spec, axis)[selected(labels)]
                array = _unrows(rows, spec, axis)
        if 0 in array.shape:  # an order that is gone entirely
            _get(params, spec["path"][:-1]).pop(spec["path"][-1])
            continue
        _set(params, spec["path"], array.astype(np.asarray(_get(model.params, spec["path"])).dtype))
    reference = jax.eval_shape(FacetModel(new, {}).make_module(2).init, *FacetModel._init_args(0))["params"]
    params = jax.tree_util.tree_map(jnp.asarray, _linear_keys(params, reference))
    pruned = FacetModel(new, params, None, model.block_atoms, model.store_edges)
    if not same_shapes(reference, params):
        raise AssertionError("pruned parameters do not match the pruned config")
    return pruned


def _linear_keys(params: dict, reference: dict) -> dict:
    """``params`` with e3nn Linear weights renamed as in ``reference`` (their names hold the
    multiplicities), matched by (l in, l out)."""
    if not isinstance(params, dict):
        return params
    if params and all(_LINEAR_KEY.fullmatch(k) for k in params):
        orders_of = lambda key: (_LINEAR_KEY.fullmatch(key).group(2), _LINEAR_KEY.fullmatch(key).group(5))  # noqa: E731
        by_orders = {orders_of(k): v for k, v in params.items()}
        return {k: by_orders[orders_of(k)] for k in reference if orders_of(k) in by_orders}
    return {k: _linear_keys(v, reference.get(k, {})) for k, v in params.items()}


def parameter_count(config: FacetConfig) -> int:
    shapes = jax.eval_shape(FacetModel(config, {}).make_module(2).init, *FacetModel._init_args(0))["params"]
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes))


def kept_importance(scores: dict, keep: dict) -> float:
    """The importance a pruning keeps: the sum of the scores of its units."""
    return float(sum(s[keep[k]].sum() for k, s in scores.items()))


def target_shape(config: FacetConfig, target_params: int, mode: str = "both", scores: dict | None = None
                 ) -> tuple[dict, int]:
    """({l: channels}, mixer channels) of a pruning with at most ``target_params``
    parameters: every width times a common fraction (``mode`` "channels"), the top order
    dropped ("orders"), or either ("both"). The largest, or with ``scores`` (unit
    importance) the one that keeps the most importance."""
    from .prune import MODES

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n, heads = orders(config), config.mixer_heads
    top = max(n)
    options = []
    for steps in ([n[0]] if mode == "orders" else range(1, n[0] + 1)):
        f = steps / n[0]
        hidden = {l: max(1, round(c * f)) for l, c in n.items()}
        mixer = heads * max(1, round(config.mixer_channels * f / heads))
        for drop in ([False] if mode == "channels" or top == 0 else [True] if mode == "orders" else [False, True]):
            h = {l: c for l, c in hidden.items() if not (drop and l == top)}
            size = parameter_count(pruned_config(config, h, mixer))
            options.append((size, tuple(sorted(h.items())), mixer))
    fitting = [o for o in options if o[0] <= target_params]
    if not fitting:
        raise ValueError(f"no {mode} pruning of this model has <= {target_params} parameters "
                         f"(smallest: {min(options)[0]})")
    if scores is None:
        _, hidden, mixer = max(fitting)
    else:
        _, hidden, mixer = max(fitting, key=lambda o: (
            kept_importance(scores, kept_units(scores, config, dict(o[1]), o[2])), o[0]))
    return dict(hidden), mixer
