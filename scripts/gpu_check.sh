#!/usr/bin/env bash
# The engine on a CUDA GPU in one short run: the CUDA tests (GPU against CPU), timings of
# FB15k-237 training batches and evaluation passes (plain and GRSNN+), and as much of the
# fb237_v1 full protocol as the time left allows (its run directory comes back).
#
#   bash scripts/gpu_check.sh --prepare [DATA_ROOT]   # here: pack FB15k-237 + WN18RR into .gpu/
#   bash scripts/gpu_check.sh [MINUTES]               # on the GPU machine (default 9 minutes)
#
# Made for a machine lent for minutes whose python3 already has torch (CUDA),
# torch-geometric, networkx, pyyaml, tqdm and pytest, which cannot download anything and
# sees only this working tree (../shared does not travel: --prepare packs the two large
# data sets, 4.7 MB compressed, into .gpu/, which git ignores; carry it along). Output goes
# to $OUT (default out/gpu) as gpu_check.log and fb237_v1.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    root="${2:-${GRSNN_DATA_ROOT:-../shared/datasets}}"
    mkdir -p .gpu
    tar czf .gpu/kgdata.tgz -C "$root" FB15k-237 WN18RR || exit 1
    echo "packed $(du -h .gpu/kgdata.tgz | cut -f1) into .gpu/kgdata.tgz; carry .gpu"
    exit 0
fi

minutes="${1:-9}"
start=$(date +%s)
left() { echo $(( minutes * 60 - ($(date +%s) - start) )); }
OUT="${OUT:-out/gpu}"
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
scratch=$(mktemp -d)                 # scratch space: the unpacked data, the training run
data="$scratch/data"
mkdir -p "$data"
if [[ -f .gpu/kgdata.tgz ]]; then tar xzf .gpu/kgdata.tgz -C "$data"; fi
{
    echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null)"
    "$py" -c "import torch, torch_geometric; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'pyg', torch_geometric.__version__)"

    echo "== CUDA tests (GPU against CPU)"
    timeout 240 "$py" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tail -15

    for cfg in kg_completion/fb15k237 kg_completion/fb15k237_grsnn+; do
        if [[ ! -d "$data/FB15k-237" ]]; then echo "no FB15k-237 (run --prepare here)"; break; fi
        echo "== $cfg: training batches and evaluation passes on the GPU ($(left) s left)"
        timeout 120 "$py" benchmarks/profile_batch.py --config "$cfg" --data-root "$data" \
            --device "${GRSNN_GPU_DEVICE:-cuda}" --warmup 2 --timed 2 --eval-queries 100 --top 8 2>&1 \
            | grep -v "Warning\|warn(" | tail -30
    done

    budget=$(( $(left) - 30 ))
    if (( budget > 60 )); then
        echo "== fb237_v1 full protocol on the GPU for at most ${budget} s"
        timeout "$budget" "$py" -m grsnn train -c tasks/kg_completion/fb237_v1.yaml \
            --out "$scratch/fb237_v1" --quiet --force 2>&1 | tail -5
        tail -25 "$scratch/fb237_v1/log.txt" 2>/dev/null
        tar czf "$OUT/fb237_v1.tgz" -C "$scratch" fb237_v1 2>/dev/null
    fi
    echo "== done after $(( $(date +%s) - start )) s"
} 2>&1 | tee "$log"
