#!/usr/bin/env bash
# The reports scripts/ablation_table.py reads, for finished runs of `grsnn train`:
# <run>/test_by_distance.txt (`grsnn eval --split test --by-distance`) and <run>/stats.txt
# (`grsnn stats`, 64 test queries), each from <run>/best.pt and only where missing.
#
#   bash scripts/run_reports.sh results/WN18RR_v1 results/WN18RR_v1_qs_degree_bg
#   python scripts/ablation_table.py results/WN18RR_v1 results/WN18RR_v1_qs_degree_bg
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
grsnn="${GRSNN:-.venv/bin/grsnn}"      # the command line of this checkout
for run in "$@"; do
  if [ ! -f "$run/best.pt" ]; then
    echo "run_reports.sh: $run/best.pt not found" >&2
    exit 2
  fi
  if [ ! -s "$run/test_by_distance.txt" ]; then
    $grsnn eval --checkpoint "$run/best.pt" --split test --by-distance --quiet > "$run/test_by_distance.txt.part"
    mv "$run/test_by_distance.txt.part" "$run/test_by_distance.txt"
  fi
  if [ ! -s "$run/stats.txt" ]; then
    $grsnn stats --checkpoint "$run/best.pt" --queries 64 > "$run/stats.txt.part"
    mv "$run/stats.txt.part" "$run/stats.txt"
  fi
  echo "$run: test_by_distance.txt, stats.txt"
done
