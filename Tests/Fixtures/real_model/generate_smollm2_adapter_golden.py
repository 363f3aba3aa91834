#!/usr/bin/env python3
"""Goldens for a trained adapter on the real SmolLM2-135M-Instruct (issue 13 acceptance, "the same adapter"):
transformers (GGUF loader, fp32) + PEFT with Tests/Fixtures/real_model/smollm2-adapter, on toydata/eval.jsonl
rendered with the model's own chat template, and greedy chat completions.

    /work/venv/bin/python Tests/Fixtures/real_model/generate_smollm2_adapter_golden.py MODEL.gguf [MERGED_DIR [EXPORT.gguf]]

MODEL.gguf: bash Tests/Fixtures/real_model/fetch_smollm2_gguf.sh. The adapter was trained by qlora-run (NF4 base,
rank 4 on q/o, one epoch of toydata/lora_data.jsonl; README of that directory). Writes
Tests/Fixtures/real_model/smollm2_adapter_golden.json, which RealGGUFModelTests compares with.
With MERGED_DIR (qlora-run `merge` of the same adapter, from: original, fp32) it also prints how transformers'
logits of that directory compare with PEFT's merge_and_unload(), and with EXPORT.gguf how transformers' GGUF
loader's logits of qlora-run's export compare with the merged directory's (figures for the README).
"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
ADAPTER = os.path.join(HERE, "smollm2-adapter")
PROMPTS = ["Capital of France?", "Uppercase: dog", "What is 3 + 4?"]
torch.set_num_threads(2)

gguf_path = os.path.abspath(sys.argv[1])
folder, name = os.path.dirname(gguf_path), os.path.basename(gguf_path)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
model = PeftModel.from_pretrained(base, ADAPTER).eval()


def supervised_mask(messages, offsets):
    """Each assistant reply as the template writes it plus its <|im_end|> (not the newline after it)."""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
        end = len(tok.apply_chat_template(messages[:i + 1], tokenize=False))
        spans.append((start, end - 1))
    return [1 if any(s < span_end and span_start < e for span_start, span_end in spans) else 0 for s, e in offsets]


total, count = 0.0, 0
with torch.no_grad():
    for line in open(os.path.join(ROOT, "toydata/eval.jsonl")):
        messages = json.loads(line)["conversations"]
        text = tok.apply_chat_template(messages, tokenize=False)
        encoded = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, mask = encoded["input_ids"], supervised_mask(messages, encoded["offset_mapping"])
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        for t in range(1, len(ids)):
            if mask[t]:
                total -= logprobs[t - 1, ids[t]].item()
                count += 1

generations = {}
for prompt in PROMPTS:
    rendered = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    x = tok(rendered, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**x, max_new_tokens=16, do_sample=False)
    generations[prompt] = tok.decode(out[0][x["input_ids"].shape[1]:], skip_special_tokens=True)

golden = {"source": "transformers GGUF loader (fp32) + PEFT, " + name, "eval_data": "toydata/eval.jsonl",
          "eval_loss": total / count, "supervised_tokens": count, "max_new_tokens": 16, "generations": generations}
json.dump(golden, open(os.path.join(HERE, "smollm2_adapter_golden.json"), "w"), indent=1, ensure_ascii=False)
print(json.dumps(golden, indent=1, ensure_ascii=False))

if len(sys.argv) > 2:
    ids = tok("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital",
              add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        reference = model.merge_and_unload()(ids).logits.double()
        merged = AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=torch.float32).eval()
        ours = merged(ids).logits.double()
    scale = reference.abs().max().item()
    print(f"merged dir vs PEFT merge_and_unload: max |diff| {(ours - reference).abs().max().item():.3e} "
          f"(relative to max |logit| {(ours - reference).abs().max().item() / scale:.3e}), argmax equal: "
          f"{bool((ours.argmax(-1) == reference.argmax(-1)).all())}")
    if len(sys.argv) > 3:
        path = os.path.abspath(sys.argv[3])
        exported = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
        with torch.no_grad():
            theirs = exported(ids).logits.double()
        print(f"{os.path.basename(path)} via transformers' GGUF loader vs merged dir: max |diff| "
              f"{(theirs - ours).abs().max().item():.3e} (relative {(theirs - ours).abs().max().item() / scale:.3e}), mean |diff| "
              f"{(theirs - ours).abs().mean().item():.3e}, mean KL(merged || export) "
              f"{(torch.softmax(ours, -1) * (torch.log_softmax(ours, -1) - torch.log_softmax(theirs, -1))).sum(-1).mean().item():.3e}, "
              f"argmax agreement {(theirs.argmax(-1) == ours.argmax(-1)).double().mean().item():.3f}")
