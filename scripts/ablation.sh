#!/usr/bin/env bash
# The reach ablation of docs/RESULTS.md: one task config trained with one lever (or a
# combination of levers joined by "+") switched on, at a stated epoch budget, then the
# test metrics by hop distance and the circuit's reach and firing rate.
#
#   bash scripts/ablation.sh WN18RR_v1 paper 4          # the paper's circuit, 4 epochs
#   bash scripts/ablation.sh WN18RR_v1 reached+state 4  # two levers together
#   SEED=1 bash scripts/ablation.sh fb237_v1 reached+state 20
#
# Levers: paper (none), reached (model.drive=reached: query-driven circuit), state
# (model.readout=state: first-spike code and final membrane in the readout), degree
# (model.degree_prior=true: the candidate's incoming edges per relation), fast
# (model.delay_init=-3: every delay starts at 0), pna (model.aggregate=pna: mean, max,
# min and standard deviation of the delayed spikes with degree scalers), T<k> (model.time_steps=k), lambda<x>
# (model.linear_scale=x: the synaptic gain), tau<x> (model.tau=x: the neurons' time
# constant; a smaller one makes a single arrival cross the threshold sooner), K<k>
# (model.delay_bound=k: the largest synaptic delay), rate<w> (task.firing_rate_weight=w: the
# firing-rate penalty), drop<x> (task.edge_dropout=x: each training batch's graph without a
# share x of its facts, or of its edges in link prediction), ema<d> (train.ema_decay=d: the
# parameters' moving average validated and tested), auto (model.propagation=auto:
# the event-driven engine where the circuit is sparse; same results, other seconds per
# epoch), triangle
# (model.surrogate=triangle: a surrogate gradient of compact support), qs
# (model.query_sized=true: train on the subgraph the queries reach; needs reached+triangle;
# same results, other seconds per epoch), bg (model.background=true: every candidate's
# readout in the circuit run once per graph without a query, bias-driven), pair
# (model.background_pair=true: the product of the source's and the candidate's background
# readouts; needs bg), feat (model.node_features=true: the node features drive the
# background circuit; needs bg and a data set with features), fpair
# (model.feature_pair=true: the product of the two ends' feature currents; needs feat),
# fhops<k> (model.feature_hops=k: the features smoothed over k hops of the graph first;
# needs feat), fcos (model.feature_cosine=true: the cosine of the two ends' features as
# one more input of the scoring MLP; needs feat), fcoshops<k> (model.feature_cosine_hops=k:
# one cosine per smoothing depth 0..k; needs fcos), wonly<p> (model.wave_only_rows=p: a
# share p of the training rows scored without the background and pair inputs; needs bg).
# The first argument names the paper's configuration tasks/paper/kg_completion/<split>.yaml
# or tasks/paper/link_prediction/<name>.yaml, which every lever starts from.
# Runs go to $RUNS/ablation/<split>/<levers>[_s<seed>]/
# (default RUNS=results); an interrupted run resumes from its last.pt; a finished one
# (results.json present) only reprints its reports. DRY_RUN=1 prints the training command
# and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
split="$1"; levers="$2"; epochs="${3:-20}"; seed="${SEED:-0}"
runs="${RUNS:-results}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
cfg="tasks/paper/kg_completion/$split.yaml"
[ -f "$cfg" ] || cfg="tasks/paper/link_prediction/$split.yaml"
[ -f "$cfg" ] || { echo "ablation.sh: no task config for $split" >&2; exit 2; }
sets=(--set "train.num_epoch=$epochs" --set "train.seed=$seed")
IFS='+' read -r -a parts <<< "$levers"
for lever in "${parts[@]}"; do
  case "$lever" in
    paper) ;;
    reached) sets+=(--set model.drive=reached) ;;
    state) sets+=(--set model.readout=state) ;;
    fast) sets+=(--set model.delay_init=-3) ;;
    degree) sets+=(--set model.degree_prior=true) ;;
    pna) sets+=(--set model.aggregate=pna) ;;
    T[1-9]*) sets+=(--set "model.time_steps=${lever#T}") ;;
    lambda[0-9]*) sets+=(--set "model.linear_scale=${lever#lambda}") ;;
    tau[0-9]*) sets+=(--set "model.tau=${lever#tau}") ;;
    K[0-9]*) sets+=(--set "model.delay_bound=${lever#K}") ;;
    rate[0-9]*) sets+=(--set "task.firing_rate_weight=${lever#rate}") ;;
    drop[0-9]*) sets+=(--set "task.edge_dropout=${lever#drop}") ;;
    ema[0-9]*) sets+=(--set "train.ema_decay=${lever#ema}") ;;
    auto) sets+=(--set model.propagation=auto) ;;
    triangle) sets+=(--set model.surrogate=triangle) ;;
    qs) sets+=(--set model.query_sized=true) ;;
    bg) sets+=(--set model.background=true) ;;
    pair) sets+=(--set model.background_pair=true) ;;
    feat) sets+=(--set model.node_features=true) ;;
    fpair) sets+=(--set model.feature_pair=true) ;;
    fhops[0-9]*) sets+=(--set "model.feature_hops=${lever#fhops}") ;;
    fcos) sets+=(--set model.feature_cosine=true) ;;
    fcoshops[0-9]*) sets+=(--set "model.feature_cosine_hops=${lever#fcoshops}") ;;
    wonly[0-9]*) sets+=(--set "model.wave_only_rows=${lever#wonly}") ;;
    *) echo "ablation.sh: unknown lever $lever" >&2; exit 2 ;;
  esac
done
name="$levers"; [ "$seed" = 0 ] || name="${levers}_s$seed"
out="$runs/ablation/$split/$name"
grsnn=.venv/bin/grsnn
if [ -n "${DRY_RUN:-}" ]; then
  echo "grsnn train -c $cfg --out $out ${sets[*]}"
  exit 0
fi
if [ ! -f "$out/results.json" ]; then
  if [ -f "$out/last.pt" ]; then
    $grsnn train --out "$out" --resume --quiet
  else
    $grsnn train -c "$cfg" --out "$out" "${sets[@]}" --quiet
  fi
fi
bash scripts/run_reports.sh "$out" > /dev/null
cat "$out/test_by_distance.txt" "$out/stats.txt"
