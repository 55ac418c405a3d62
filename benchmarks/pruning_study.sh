#!/usr/bin/env bash
# The pruning study of docs/pruning.md (issue 23), step by step; each step after the unpruned
# model, on one core:
#   benchmarks/pruning_study.sh wide|prune|water|wide20 [-sN]|early 1|2|4|8 [-sN]|layers|paths|paths-speed|paths-l3|facet|finetune NAME|train NAME|errors|speed|pairs|pareto
# Compute is counted in s/batch measured alone on one core (docs/pruning.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NEMD=${NEMD:-.venv/bin/nemd}
R=runs/pruning
TRAIN=(data/water/train/*.extxyz)
TEST=(data/water/test/T300_rho0.894_n64_s101.extxyz data/water/test/T300_rho0.997_n64_s102.extxyz)
case "${1:-}" in
  wide)  # the unpruned model: nemp-small x2 channels, l <= 2 (38,861 parameters)
    $NEMD train configs/pruning/nemp-wide.toml ;;
  prune)  # importance once (Taylor, 100 batches), then every pruned variant; zero-shot errors
    W=$R/nemp-wide/model.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 18477 --method taylor --out $R/taylor.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 18477 --method weight-norm --out $R/weight-norm.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 18477 --method random --out $R/random.nemd
    $NEMD prune $W "${TRAIN[@]}" --shape 4 1 --importance $R/taylor.json --out $R/taylor-4ch.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 33197 --mode channels --importance $R/taylor.json \
      --out $R/taylor-channels.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 33197 --mode orders --importance $R/taylor.json \
      --out $R/taylor-orders.nemd
    for m in taylor weight-norm random taylor-4ch taylor-channels taylor-orders; do
      $NEMD errors $R/$m.nemd "${TEST[@]}" --json $R/zero-shot.jsonl
    done ;;
  water)  # the fully trained nemp-water as the big model: Taylor and random blocks to 4 channels, l <= 1
    $NEMD prune nemp-water "${TRAIN[@]}" --shape 4 1 --method taylor --out $R/water-taylor-4ch.nemd
    $NEMD prune nemp-water "${TRAIN[@]}" --shape 4 1 --method random --out $R/water-random-4ch.nemd
    for m in water-taylor-4ch water-random-4ch; do $NEMD errors $R/$m.nemd "${TEST[@]}" --json $R/zero-shot.jsonl; done ;;
  wide20)  # nemp-wide trained 20 epochs, Taylor-pruned to nemp-small's size: the largest config, and the one
           # that keeps the most importance (one importance pass, reused); "wide20 -sN": seed N's nemp-wide-20-sN
    S=${2:-}
    W=$R/nemp-wide-20$S/model.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 18477 --method taylor --out $R/wide20-taylor-size$S.nemd
    $NEMD prune $W "${TRAIN[@]}" --target-params 18477 --shape-by importance --importance $R/wide20-taylor-size$S.json \
      --out $R/wide20-taylor-importance$S.nemd
    for m in wide20-taylor-size$S wide20-taylor-importance$S; do $NEMD errors $R/$m.nemd "${TEST[@]}" --json $R/zero-shot.jsonl; done ;;
  early)  # nemp-wide trained only $2 epochs (1, 2, 4 or 8), pruned by importance to nemp-small's size (early pruning);
          # "early 4 -sN": seed N's nemp-wide-4-sN
    N=${2:?usage: $0 early EPOCHS [-sN]}; S=${3:-}
    $NEMD prune $R/nemp-wide-$N$S/model.nemd "${TRAIN[@]}" --target-params 18477 --shape-by importance --method taylor \
      --out $R/early$N-taylor-importance$S.nemd
    $NEMD errors $R/early$N-taylor-importance$S.nemd "${TEST[@]}" --json $R/zero-shot.jsonl ;;
  layers)  # nemp-wide-20 cut to its first layer, then by importance to nemp-small's size (a fresh Taylor pass:
          # it scores the layers too)
    W=$R/nemp-wide-20/model.nemd
    $NEMD prune $W "${TRAIN[@]}" --layers 1 --target-params 18477 --shape-by importance --method taylor \
      --out $R/wide20-taylor-1layer.nemd
    $NEMD errors $R/wide20-taylor-1layer.nemd "${TEST[@]}" --json $R/zero-shot.jsonl ;;
  paths)  # nemp-water without its 1, 2, 3 least important CG paths (one Taylor pass, reused): zero-shot errors
    $NEMD prune nemp-water "${TRAIN[@]}" --drop-paths 1 --method taylor --out $R/water-paths-1.nemd
    for k in 2 3; do
      $NEMD prune nemp-water "${TRAIN[@]}" --drop-paths $k --importance $R/water-paths-1.json --out $R/water-paths-$k.nemd
    done
    for k in 1 2 3; do $NEMD errors $R/water-paths-$k.nemd "${TEST[@]}" --json $R/zero-shot.jsonl; done ;;
  paths-speed)  # their speed against nemp-water's, in both orders: run it with the other core idle
    for models in "nemp-water $R/water-paths-1.nemd $R/water-paths-2.nemd $R/water-paths-3.nemd" \
                  "$R/water-paths-3.nemd $R/water-paths-2.nemd $R/water-paths-1.nemd nemp-water"; do
      $PY benchmarks/model_benchmark.py --models $models \
        --sizes 8640 --threads 1 --skin 1 --within-cutoff --repeats 5 --out $R/speed-paths.jsonl
    done ;;
  paths-l3)  # where the node product is largest: nemp-l3 (random weights; speed does not depend on them)
              # with 23, 12 and 4 CG paths (random choice), 1536 atoms, one core, quiet, in both orders
    $PY -c "from nemd.models.nemp import NEMPModel; NEMPModel.init('nemp-l3').save('$R/nemp-l3-random.nemd')"
    for k in 11 19; do
      $NEMD prune $R/nemp-l3-random.nemd "${TRAIN[0]}" --drop-paths $k --method random --out $R/nemp-l3-random-drop$k.nemd
    done
    for models in "$R/nemp-l3-random.nemd $R/nemp-l3-random-drop11.nemd $R/nemp-l3-random-drop19.nemd" \
                  "$R/nemp-l3-random-drop19.nemd $R/nemp-l3-random-drop11.nemd $R/nemp-l3-random.nemd"; do
      $PY benchmarks/model_benchmark.py --models $models \
        --sizes 1536 --threads 1 --skin 1 --within-cutoff --repeats 5 --out $R/speed-paths-l3.jsonl
    done ;;
  facet)  # facet-water (trained) to about half its parameters, channels only: Taylor, weight norm, random
    for m in taylor weight-norm random; do
      $NEMD prune facet-water "${TRAIN[@]}" --target-params 7704 --mode channels --method $m --out $R/facet-$m-half.nemd
      $NEMD errors $R/facet-$m-half.nemd "${TEST[@]}" --json $R/zero-shot.jsonl
    done  # channels and orders by size drops l = 2; by importance it is the channels-only shape above
    $NEMD prune facet-water "${TRAIN[@]}" --target-params 7704 --mode both --importance $R/facet-taylor-half.json \
      --out $R/facet-taylor-no-l2.nemd
    $NEMD errors $R/facet-taylor-no-l2.nemd "${TEST[@]}" --json $R/zero-shot.jsonl ;;
  finetune)  # NAME: a configs/pruning/finetune-NAME.toml (taylor, weight-norm, random, taylor-4ch, ...)
    $NEMD train configs/pruning/finetune-$2.toml ;;
  train)  # NAME: any configs/pruning/NAME.toml (water-taylor-4ch, scratch-4ch-10, facet-taylor-half, ...)
    $NEMD train configs/pruning/$2.toml ;;
  errors)  # test errors of every trained model of the study (and of the shipped nemp-water, facet-water)
    for m in nemp-water facet-water $R/*/model.nemd; do
      if [ -f "$m" ] || [ "${m#$R}" = "$m" ]; then $NEMD errors $m "${TEST[@]}" --json $R/errors.jsonl; fi
    done ;;
  speed)  # energy + forces, 8640 atoms, one thread: every model of the study's fully trained runs
    $PY benchmarks/model_benchmark.py --models nemp-water facet-water $R/*/model.nemd \
      --sizes 8640 --threads 1 --skin 1 --within-cutoff --out $R/speed.jsonl ;;
  pairs)  # the same, 5 repeats, for the third run's configs only: run it with the other core idle
    $PY benchmarks/model_benchmark.py --models nemp-water $R/scratch-8ch-10/model.nemd $R/wide20-taylor-size/model.nemd \
      $R/scratch-8ch-67/model.nemd $R/wide20-taylor-importance/model.nemd $R/scratch-6ch-l2-10/model.nemd \
      --sizes 8640 --threads 1 --skin 1 --within-cutoff --repeats 5 --out $R/speed-quiet.jsonl ;;
  pareto)  # force RMSE vs µs/atom, KB/atom and parameters (docs/pruning-pareto.png)
    $PY benchmarks/pareto.py $R/errors.jsonl $R/speed.jsonl --atoms 8640 --memory process --plot docs/pruning-pareto.png ;;
  *) echo "usage: $0 wide|prune|water|wide20 [-sN]|early 1|2|4|8 [-sN]|layers|paths|paths-speed|paths-l3|facet|finetune NAME|train NAME|errors|speed|pairs|pareto" >&2; exit 2 ;;
esac
