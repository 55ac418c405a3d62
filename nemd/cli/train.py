"""``nemd train config.toml``: train a model; ``nemd distill``: make teacher-labelled data;
``nemd errors``: test errors; ``nemd prune``: prune a NEMP or Facet model by irreps blocks.

    nemd distill --out data/water                # BPNN RPBE-D3 water over 12 states + 2 test states
    nemd distill --shard 0/2 & nemd distill --shard 1/2   # the same data made by two processes
    nemd train configs/nemp-water.toml           # writes runs/<name>/model.nemd and its metrics
    nemd train configs/nemp-water.toml --resume  # continue after Ctrl-C or a crash
    nemd errors runs/nemp-water/model.nemd data/water/test/*.extxyz   # test-set errors
    nemd prune runs/big/model.nemd data/water/train/*.extxyz --target-params 18000 --out small.nemd

Ctrl-C ends training after the running epoch (its checkpoint written); ``--resume``
continues it as if it had not stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ui import StopOnInterrupt, UserError, show_messages


def train_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="nemd train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="TOML file (keys: nemd.train.TrainConfig)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from ..train import TrainConfig, train

    try:
        config = TrainConfig.from_toml(args.config)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    bar = tqdm(unit="batch", dynamic_ncols=True, file=sys.stdout, mininterval=0.5 if sys.stdout.isatty() else 30)

    def on_step(k, total):
        bar.total = total
        bar.update(1)

    def on_epoch(record):
        bar.set_description(f"epoch {record['epoch']}/{config.epochs}")
        bar.write(f"epoch {record['epoch']:>4}: loss {record['train_loss']:.3e} | valid energy "
                  f"{record['valid_energy_rmse']:.2f} meV/atom, forces {record['valid_force_rmse']:.1f} meV/Å "
                  f"({record['seconds']:.0f} s)")
        bar.reset()

    with StopOnInterrupt() as stop:
        try:
            result = train(config, resume=args.resume, on_epoch=on_epoch, on_step=on_step, stop=stop)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from None
    bar.close()
    best = result.history[result.best_epoch - 1]
    print(f"best epoch {result.best_epoch}: valid energy {best['valid_energy_rmse']:.2f} meV/atom, forces "
          f"{best['valid_force_rmse']:.1f} meV/Å; model {Path(config.out) / 'model.nemd'}")
    return 130 if stop.requested else 0


def distill_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="nemd distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/water"), help="output folder (train/, test/)")
    parser.add_argument("--states", choices=["train", "test", "all"], default="all")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="make only every N-th state from the K-th on (run N processes, K = 0..N-1)")
    parser.add_argument("--model-dir", type=Path, default=None, help="the teacher's weights (default: NEMD_DATA)")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # labels in float64; the MD itself runs in float32
    from ..train.distill import Recipe, generate

    show_messages()
    try:
        k, n = (int(x) for x in args.shard.split("/"))
    except ValueError:
        raise UserError(f"--shard must be K/N (e.g. 0/2), got {args.shard!r}") from None
    try:
        paths = generate(Recipe(), args.out, directory=args.model_dir, states=args.states, shard=(k, n))
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    print(f"{len(paths)} files under {args.out}")
    return 0


def errors_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="nemd errors", description="energy and force errors of a NEMP or Facet "
                                     "model against labelled structures (meV/atom, meV/Å)")
    parser.add_argument("model", help="a saved model (*.nemd) or a registered trained model (e.g. nemp-water)")
    parser.add_argument("data", nargs="+", type=Path, help="labelled files (.extxyz, n2p2 .data, .h5); "
                        "each is reported on its own")
    parser.add_argument("--json", type=Path, default=None, help="also append one JSON line per file here")
    args = parser.parse_args(argv)
    import json

    from ..models import load
    from ..train.data import read_samples
    from ..train.evaluate import errors

    try:
        model = load(args.model)
        rows = []
        for path in args.data:
            row = dict(model=args.model, data=str(path), **errors(model, read_samples(path)))
            rows.append(row)
            print(f"{path}: {row['frames']} frames, energy RMSE {row['energy_rmse']:.2f} meV/atom "
                  f"(mean {row['energy_mean_error']:+.2f}), force RMSE {row['force_rmse']:.1f} meV/Å ("
                  + ", ".join(f"{k[11:]} {v:.1f}" for k, v in row.items() if k.startswith("force_rmse_")) + ")")
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        with open(args.json, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


def prune_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="nemd prune", description="prune a NEMP or Facet model by irreps blocks (channels per order l) to a "
        "smaller config of its kind; fine-tune the result with `nemd train` (init_from, distill_from)")
    parser.add_argument("model", help="a saved NEMP or Facet model (*.nemd) or a registered trained one "
                        "(e.g. nemp-water, facet-water)")
    parser.add_argument("data", nargs="+", type=Path, help="labelled training files the importance is measured on")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--target-params", type=int, help="the largest pruned config with at most this many parameters")
    size.add_argument("--shape", nargs=2, metavar=("A", "B"), help="the pruned config: NEMP: CHANNELS LMAX_NODE; "
                      "Facet: HIDDEN_IRREPS MIXER_CHANNELS (e.g. '16x0e + 8x1o' 8)")
    parser.add_argument("--layers", type=int, default=None,
                        help="NEMP: keep the first N message-passing layers (removed from the top; --target-params "
                        "and --shape then size the channels of the shallower model)")
    parser.add_argument("--drop-paths", type=int, default=0, metavar="K",
                        help="NEMP: also remove the K least important CG paths of the node tensor product (every "
                        "node order keeps one)")
    parser.add_argument("--mode", default="both", choices=["both", "channels", "orders"],
                        help="with --target-params: prune channels and orders, channels only or orders only")
    parser.add_argument("--shape-by", default="size", choices=["size", "importance"],
                        help="with --target-params: the largest fitting config, or the fitting config that keeps "
                        "the most block importance (e.g. fewer channels but a higher order)")
    parser.add_argument("--method", default="taylor", choices=["taylor", "weight-norm", "random"],
                        help="block importance: |z dL/dz| of block gates, the norm of the weights, or random")
    parser.add_argument("--importance", type=Path, default=None,
                        help="reuse the importance of an earlier report (*.json of --out) instead of measuring it")
    parser.add_argument("--batches", type=int, default=100, help="training batches the Taylor score sums over")
    parser.add_argument("--seed", type=int, default=0, help="batch order; the draw of --method random")
    parser.add_argument("--out", type=Path, required=True, help="the pruned model file (*.nemd); its report "
                        "(importance, kept channels) goes next to it as *.json")
    args = parser.parse_args(argv)
    import json
    import time

    import numpy as np
    from tqdm import tqdm

    from ..models import load
    from ..models.facet import FacetModel
    from ..models.nemp import NEMPModel
    from ..train import Batcher
    from ..train import prune as pr
    from ..train import prune_facet as pf
    from ..train.data import read_samples

    try:
        model = load(args.model)
        if not isinstance(model, (NEMPModel, FacetModel)):
            raise ValueError(f"{args.model} is a {type(model).__name__}; nemd prunes NEMP and Facet models")
        facet = isinstance(model, FacetModel)
        method = pf if facet else pr
        if args.shape_by == "importance" and args.target_params is None:
            raise ValueError("--shape-by importance chooses among configs of --target-params; --shape fixes one")
        if args.layers is not None and facet:
            raise ValueError("--layers prunes NEMP's message-passing layers; Facet's blocks are not pruning units")
        if args.drop_paths and facet:
            raise ValueError("--drop-paths prunes NEMP's CG paths; Facet has no CG-path unit")
        if args.target_params is None and args.shape is None and args.layers is None and not args.drop_paths:
            raise ValueError("give the size: --target-params N, --shape A B, --layers N or --drop-paths K")
        shallow = model if args.layers is None else pr.prune_layers(model, args.layers)
        shape = _prune_shape(shallow, args, method, facet)  # before the importance: bad sizes fail fast
        t0 = time.perf_counter()
        if args.importance is not None:
            earlier = json.loads(args.importance.read_text())
            if earlier["model"] != args.model:
                raise ValueError(f"{args.importance} scores {earlier['model']}, not {args.model}")
            args.method = earlier["method"]
            scores = {k: np.asarray(v) for k, v in earlier["importance"].items()}
        elif args.method == "taylor":
            samples = [s for path in args.data for s in read_samples(path)]
            batches = Batcher(model, samples, 2, 64).epoch(args.seed)
            n = min(args.batches, len(samples) // 2 or 1)
            scores = method.taylor_importance(model, tqdm((next(batches) for _ in range(n)), total=n, unit="batch",
                                                          desc="importance"))
        elif args.method == "weight-norm":
            scores = method.weight_norm_importance(model)
        else:
            scores = method.random_importance(model, args.seed)
        if not facet:  # the channel spaces of the kept layers (scored in the whole model)
            spaces = pr.block_gate_shapes(shallow.config)
            scores = {k: v for k, v in scores.items() if k in spaces or k in (pr.LAYERS, pr.PATHS)}
        if args.shape_by == "importance":
            shape = method.target_shape(shallow.config, args.target_params, args.mode, scores)
        if facet:
            keep = pf.kept_units(scores, model.config, *shape)
            pruned = pf.prune(model, keep)
            sizes = dict(hidden=[model.config.hidden, pruned.config.hidden],
                         mixer_channels=[model.config.mixer_channels, pruned.config.mixer_channels])
        else:
            keep = pr.kept_channels(scores, *shape)
            pruned = pr.prune(shallow, keep, shape[1])
            if args.drop_paths:
                if pr.PATHS not in scores:
                    raise ValueError(f"{args.importance} has no CG-path scores (an earlier nemd); measure them again")
                pruned = pr.prune_paths(pruned, pr.kept_paths(scores, model.config, pruned.config, args.drop_paths))
            paths = [len(pr.cg_paths(c.lmax, c.lmax_node, c.cg_paths)[0]) for c in (model.config, pruned.config)]
            sizes = dict(channels=[model.config.channels, shape[0]], lmax_node=[model.config.lmax_node, shape[1]],
                         n_layers=[model.config.n_layers, shallow.config.n_layers], cg_paths=paths)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pruned.save(args.out)
    report = dict(model=args.model, method=args.method, mode=args.mode, shape_by=args.shape_by, seed=args.seed,
                  seconds=time.perf_counter() - t0, parameters=model.n_parameters,
                  pruned_parameters=pruned.n_parameters, **sizes,
                  order_importance=method.order_importance(scores).tolist(),
                  kept={k: v.tolist() for k, v in keep.items()}, importance={k: v.tolist() for k, v in scores.items()})
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print("importance per order l: " + ", ".join(f"l={l} {v:.3g}" for l, v in enumerate(report["order_importance"])))
    if pr.LAYERS in scores:
        print("importance per layer: " + ", ".join(f"{t} {v:.3g}" for t, v in enumerate(scores[pr.LAYERS], 1)))
    if not facet and pr.PATHS in scores:
        path_scores = pr.path_importance(scores, model.config, shallow.config.n_layers)
        print("importance per CG path (l1, l2 -> l): " + ", ".join(
            f"{a}{b}>{c} {v:.3g}" for (a, b, c), v in sorted(path_scores.items(), key=lambda x: -x[1])))
    print(f"{model.n_parameters} -> {pruned.n_parameters} parameters ("
          + "; ".join(f"{k} {a} -> {b}" for k, (a, b) in sizes.items()) + f"); {args.out}")
    return 0


def _prune_shape(model, args, method, facet: bool) -> tuple:
    """The pruned shape: NEMP (channels, lmax_node); Facet ({l: channels}, mixer channels);
    without --target-params and --shape, NEMP's own (--layers, --drop-paths only)."""
    if args.target_params is not None:
        return method.target_shape(model.config, args.target_params, args.mode)
    if args.shape is None:
        return model.config.channels, model.config.lmax_node
    a, b = args.shape
    try:
        if facet:
            import e3nn_jax as e3nn

            return {ir.l: mul for mul, ir in e3nn.Irreps(a).simplify()}, int(b)
        return int(a), int(b)
    except ValueError as exc:
        raise ValueError(f"--shape {a} {b}: {exc}") from None


def main(command: str, argv) -> int:
    try:
        return {"train": train_main, "distill": distill_main, "errors": errors_main, "prune": prune_main}[command](argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
