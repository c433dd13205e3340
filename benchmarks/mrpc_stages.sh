#!/usr/bin/env bash
# Issue 11's GLUE measurement: MRPC (full training set) with STS-B (limited) on minilm, 3 seeds, five strategies:
# single, uniform, uniform with an MRPC teacher ensemble (the three single-task runs), uniform>finetune and
# uniform>finetune with SMART. Two benches (the teacher applies to every run of a bench); each is resumable:
# run the script again to continue. Options after OUT go to both benches (e.g. --epochs 3 --limit stsb=2000;
# a later --limit TASK=N for a task overrides the earlier). With the defaults (2 epochs per stage, STS-B capped
# at 1,000) about 2 hours on two CPU cores; minutes on a GPU.
#
#   bash benchmarks/mrpc_stages.sh [GLUE_DIR] [OUT] [BENCH OPTIONS...]
set -euo pipefail
DATA=${1:-../shared/data/glue}
OUT=${2:-bench/mrpc-stsb}
COMMON=(--target mrpc --aux stsb --data-dir "$DATA" --epochs 2 --limit stsb=1000 --seeds 0,1,2 "${@:3}")
start=$(date +%s)
mtl bench "${COMMON[@]}" --strategy "single,uniform,uniform>finetune,uniform>finetune:smart" -o "$OUT"
mtl bench "${COMMON[@]}" --strategy uniform \
    --teacher "mrpc=$OUT/single/seed-0,$OUT/single/seed-1,$OUT/single/seed-2" -o "$OUT-kd"
echo "wall time: $(( $(date +%s) - start )) s"
