#!/usr/bin/env bash
# Run (or continue) the experiments one after another: a finished run
# (results.json present) is skipped, an interrupted one resumes from its last.pt,
# a new one starts. Stop it at any moment; run it again to go on.
#
#   bash scripts/experiments.sh                 # the default list below
#   bash scripts/experiments.sh fb237_v2 cora   # some of them, in this order
#
# Names: GraIL splits (fb237_v1..v4, WN18RR_v1..v4), cora, citeseer, pubmed, fb15k237,
# fb15k237_grsnn+, wn18rr, wn18rr_grsnn+ (the full protocol), and the bounded CPU budgets
# of docs/RESULTS.md, a name plus "_budget":
#   fb15k237_budget, fb15k237_grsnn+_budget, wn18rr_budget, wn18rr_grsnn+_budget:
#       one epoch of 600 batches, validation and the final test capped at 500 triples
#       (the full filtered test: grsnn eval --checkpoint <run>/best.pt --split test
#       --set task.max_eval_queries=null, resumable);
#   fb237_v3_budget, WN18RR_v3_budget (2 epochs), fb237_v4_budget (2 epochs): the GraIL
#       protocol cut to fewer epochs, validated after every epoch for the learning curve.
# A suffix "_T<k>" runs the same protocol with k time steps (--set model.time_steps=k):
#   cora_T20, citeseer_T20, WN18RR_v1_T16 are the horizon diagnostics of docs/RESULTS.md.
# A suffix "_qs" runs tasks/query_sized/<name>.yaml (the query-driven circuit trained on
#   the nodes each batch reaches, docs/method.md section 11): wn18rr_qs. A suffix "_paper"
#   runs the paper's exact configuration (tasks/paper/): WN18RR_v1_paper, cora_paper.
# A run that has a last.pt resumes with its own config.yaml.
# Runs go to $RUNS/<name>/ (default runs/); output to $RUNS/<name>.out. One job at
# a time, 2 threads (OMP_NUM_THREADS=1 to run two side by side). The project's own record of these runs is kept in results/ (committed,
# so that a run stopped at the end of a working session resumes in the next one):
#
#   RUNS=results bash scripts/experiments.sh cora
#
# At the end it prints the state of the named runs that exist (grsnn summary).
# DRY_RUN=1 prints what each name would run (resume, start or skip) and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dry="${DRY_RUN:-}"
[ "$dry" != 0 ] || dry=""
[ -n "$dry" ] || bash scripts/setup.sh >/dev/null
runs="${RUNS:-runs}"
[ -n "$dry" ] || mkdir -p "$runs"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(fb237_v1 WN18RR_v1 cora citeseer fb237_v2 WN18RR_v4 WN18RR_v2 fb237_v3 fb237_v4 WN18RR_v3)
fi
for name in "${names[@]}"; do
  base="${name%_budget}"
  budget=()
  family=""
  if [[ "$base" =~ ^(.+)_qs$ ]]; then
    base="${BASH_REMATCH[1]}"
    family=query_sized
  elif [[ "$base" =~ ^(.+)_paper$ ]]; then
    base="${BASH_REMATCH[1]}"
    family=paper
  fi
  if [[ "$base" =~ ^(.+)_T([1-9][0-9]*)$ ]]; then
    base="${BASH_REMATCH[1]}"
    budget=(--set "model.time_steps=${BASH_REMATCH[2]}")
  fi
  case "$name" in
    fb15k237_budget|fb15k237_grsnn+_budget|wn18rr_budget|wn18rr_grsnn+_budget)
      budget+=(--set train.num_epoch=1 --set train.max_steps_per_epoch=600
              --set task.max_eval_queries=500 --set train.checkpoint_interval=60
              --set train.log_interval=10) ;;
    fb237_v3_budget) budget+=(--set train.num_epoch=4 --set train.valid_interval=1) ;;
    fb237_v4_budget|WN18RR_v3_budget)
      budget+=(--set train.num_epoch=2 --set train.valid_interval=1) ;;
    *_budget) echo "error: no budget defined for $name" >&2; exit 2 ;;
  esac
  case "$base" in
    cora|citeseer|pubmed) kind=link_prediction ;;
    *) kind=kg_completion ;;
  esac
  case "$family" in
    paper) config="tasks/paper/$kind/$base.yaml" ;;
    query_sized) config="tasks/query_sized/$base.yaml" ;;
    *) config="tasks/$kind/$base.yaml" ;;
  esac
  [ -f "$config" ] || { echo "error: no config $config" >&2; exit 2; }
  out="$runs/$name"
  if [ -f "$out/results.json" ]; then
    echo "$name: done ($out/results.json)"
    continue
  fi
  # a run resumes with its own config.yaml (what it started with, whatever the task's
  # config says now); a new one starts from the task's config
  source=(-c "$config")
  flags=()
  if [ -f "$out/last.pt" ]; then
    source=()
    flags=(--resume)
  elif [ -d "$out" ]; then
    flags=(--force)        # stopped before its first checkpoint: nothing to keep
  fi
  echo "$name: $(date +%H:%M:%S) grsnn train ${source[*]:-} --out $out ${budget[*]:-} ${flags[*]:-}"
  [ -z "$dry" ] || continue
  .venv/bin/grsnn train "${source[@]}" --out "$out" --quiet "${budget[@]}" "${flags[@]}" \
    >> "$runs/$name.out" 2>&1
  echo "$name: finished $(date +%H:%M:%S)"
done
# the state of these runs in one table (grsnn summary)
summary=()
for name in "${names[@]}"; do
  [ -f "$runs/$name/config.yaml" ] && summary+=("$runs/$name")
done
if [ ${#summary[@]} -gt 0 ]; then
  if [ -n "$dry" ]; then
    echo "summary: grsnn summary ${summary[*]}"
  else
    echo; .venv/bin/grsnn summary "${summary[@]}" || true
  fi
fi
