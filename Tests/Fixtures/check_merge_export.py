#!/usr/bin/env python3
"""By-hand interop check of merge and export (issue 14): qlora-run's outputs read by transformers and PEFT.

    swift build -c release && /work/venv/bin/python Tests/Fixtures/check_merge_export.py [BASE_DIR ADAPTER_DIR]

Default inputs: Tests/Fixtures/merge/{base,adapter} (generate_merge.py). Runs .build/release/qlora-run on a pipeline
load_checkpoint -> attach_adapters {init: {from: ADAPTER}} -> merge (fp32) -> export f32/f16/bf16/q8_0/q4_0 and
export what: adapter, in a temporary directory, then prints:
  - transformers.from_pretrained(merged dir) logits vs PEFT merge_and_unload() of the same adapter on the same base
  - transformers' GGUF loader (from_pretrained(dir, gguf_file=...)) logits of each export vs the merged checkpoint's
  - the adapter GGUF's lora tensors vs the PEFT adapter's (gguf-py reader)
Figures go to README "Merge and export". Exit 1 if a bound fails (fp32 1e-5 relative; exact for the f32 GGUF).
"""
import os, subprocess, sys, tempfile
import numpy as np
import torch
import gguf
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
base = os.path.abspath(sys.argv[1]) if len(sys.argv) > 2 else os.path.join(ROOT, "Tests/Fixtures/merge/base")
adapter = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(ROOT, "Tests/Fixtures/merge/adapter")
TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"]
torch.set_num_threads(1)

work = tempfile.mkdtemp(prefix="qlora-interop-")
stages = "".join(f"  gguf_{t}: {{kind: export, model: merged, type: {t}, to: out/model-{t}.gguf}}\n" for t in TYPES)
open(os.path.join(work, "p.yaml"), "w").write(f"""version: 1
name: interop
stages:
  base: {{kind: load_checkpoint, path: {base}}}
  adapted: {{kind: attach_adapters, model: base, targets: all-linear, init: {{from: {adapter}}}}}
  merged: {{kind: merge, model: adapted, dtype: fp32, to: out/merged}}
{stages}  lora: {{kind: export, model: adapted, what: adapter, to: out/adapter.gguf}}
""")
run = subprocess.run([os.path.join(ROOT, ".build/release/qlora-run"), "run", "p.yaml"], cwd=work, capture_output=True, text=True)
if run.returncode != 0:
    sys.exit(run.stdout + run.stderr)
out = os.path.join(work, "out")

ids = torch.randint(3, 300, (2, 32), generator=torch.Generator().manual_seed(5))
failed = False


def logits(model):
    with torch.no_grad():
        return model.eval()(ids).logits.double()


def report(name, got, want, rtol=None):
    global failed
    diff = (got - want).abs().max().item()
    rel = diff / want.abs().max().item()
    ok = rtol is None or rel <= rtol
    failed |= not ok
    print(f"{name:58s} max |diff| {diff:.3e}  relative to max |logit| {rel:.3e}{'' if ok else '  FAIL'}")


peft_merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).merge_and_unload()
reference = logits(peft_merged)
ours = logits(AutoModelForCausalLM.from_pretrained(os.path.join(out, "merged"), dtype=torch.float32))
report("transformers(merged dir) vs PEFT merge_and_unload", ours, reference, 1e-5)
for t in TYPES:
    model = AutoModelForCausalLM.from_pretrained(out, gguf_file=f"model-{t}.gguf", dtype=torch.float32)
    report(f"transformers GGUF loader ({t}) vs merged dir", logits(model), ours, 0 if t == "f32" else None)

# Adapter GGUF: llama.cpp's layout — lora_a (r, in) and lora_b (out, r) as ggml shapes, under the base's
# tensor names; q/k lora_b rows permuted as the base's q/k rows are.
reader = gguf.GGUFReader(os.path.join(out, "adapter.gguf"))
tensors = {t.name: np.array(t.data) for t in reader.tensors}
peft = load_file(os.path.join(adapter, "adapter_model.safetensors"))
worst = 0.0
for key, value in peft.items():
    layer = key.split(".layers.")[1].split(".")[0]
    module = key.split(".")[-3]
    gname = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}[module]
    side = "lora_a" if "lora_A" in key else "lora_b"
    mine = tensors[f"blk.{layer}.{gname}.weight.{side}"].astype(np.float64)
    theirs = value.double().numpy()
    if side == "lora_b" and module in ("q_proj", "k_proj"):
        heads = 4 if module == "q_proj" else 2     # tiny fixture: 4 query heads, 2 kv heads
        theirs = theirs.reshape(heads, 2, theirs.shape[0] // heads // 2, -1).swapaxes(1, 2).reshape(theirs.shape)
    worst = max(worst, float(np.abs(mine - theirs).max()))
print(f"adapter GGUF lora tensors vs PEFT adapter ({len(peft)} tensors): max |diff| {worst:.3e}")
failed |= worst != 0
print("alpha", reader.fields["adapter.lora.alpha"].contents(), "type", reader.fields["adapter.type"].contents())
sys.exit(1 if failed else 0)
