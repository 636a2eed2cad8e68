#!/usr/bin/env bash
# Set up (if needed) and run the main job: GRSNN on the shipped GraIL fb237_v1 split
# (tasks/demo.yaml), a few minutes on 2 CPU cores; leaves a run directory under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/grsnn train -c tasks/demo.yaml --out "runs/demo-$(date +%Y%m%d-%H%M%S)" "$@"
