#!/usr/bin/env bash
# The training-step ratios of issue 15 in one command: qlora-run bench and the PyTorch side
# (pytorch_train_step.py) on the same machine, one after the other, then qlora-run / PyTorch.
#   bash Tests/Benchmarks/compare_with_pytorch.sh [--quick] [PYTHON]
# PYTHON defaults to python3; without torch/transformers/peft/bitsandbytes the ratios are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=""; [ "${1:-}" = "--quick" ] && { quick="--quick"; shift; }
python="${1:-python3}"
swift build -c release --product qlora-run >&2
ours=$(.build/release/qlora-run bench $quick | tee /dev/stderr)
theirs=$("$python" Tests/Benchmarks/pytorch_train_step.py $quick | tee /dev/stderr) || { echo "PyTorch side skipped: $theirs"; exit 0; }
rate() { grep -F "$1" <<<"$2" | head -1 | sed -E 's/.*: ([0-9]+) tokens\/s.*/\1/'; }
echo
echo "ratio (qlora-run NF4 QLoRA train step / PyTorch), all positions supervised:"
for shape in "MiniMind B2x512:MiniMind B2×512" "SmolLM-135M B1x512:SmolLM-135M B1×512"; do
  py=${shape%%:*}; sw=${shape#*:}
  mine=$(rate "train step $sw (NF4 base, rank-16 q/o, all supervised)" "$ours")
  [ -n "$mine" ] || continue
  for side in "fp32 LoRA" "NF4 QLoRA"; do
    other=$(rate "pytorch train step $py ($side)" "$theirs")
    [ -n "$other" ] && awk -v a="$mine" -v b="$other" -v s="$py" -v t="$side" 'BEGIN { printf "  %s: %d vs PyTorch %s %d tokens/s = %.2fx\n", s, a, t, b, a / b }'
  done
  # bf16 compute on both sides (bnb_4bit_compute_dtype=bfloat16, the QLoRA notebook's setting).
  mine=$(rate "train step $sw (NF4 base, bf16 compute, rank-16 q/o, all supervised)" "$ours")
  other=$(rate "pytorch train step $py (NF4 QLoRA bf16 compute)" "$theirs")
  [ -n "$mine" ] && [ -n "$other" ] && awk -v a="$mine" -v b="$other" -v s="$py" 'BEGIN { printf "  %s, bf16 compute: %d vs PyTorch NF4 QLoRA bf16 compute %d tokens/s = %.2fx\n", s, a, b, a / b }'
done
