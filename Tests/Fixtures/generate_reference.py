#!/usr/bin/env python3
"""Writes the project's own numerical reference kit to Tests/Fixtures/reference/ with the real Python stack.

    python3 -m venv /tmp/fixtures-venv && /tmp/fixtures-venv/bin/pip install -r Tests/Fixtures/requirements.txt
    /tmp/fixtures-venv/bin/python Tests/Fixtures/generate_reference.py

Same layout, file names, tensor keys and JSON fields as the optional shared kit (../shared/reference), made
the same way (same library calls and settings) but from other seeds, another corpus and other conversations,
so the two kits cross-check each other. Deterministic: fixed seeds, CPU, one thread, deterministic algorithms.
Tests read the committed files and never run Python. Parts: reference_text.py (corpus, tokenizer cases),
reference_quant.py (bitsandbytes goldens), reference_train.py (LoRA / QLoRA runs).
"""
import hashlib
import json
import os
import shutil
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    # PEFT writes adapter_config.json's target_modules from a Python set, in string-hash order;
    # a fixed hash seed makes that order reproducible (0 gives the sorted order, as the Swift writer has).
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # bitsandbytes' torch.compile'd helpers run eagerly
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # PEFT looks up the base model's config online otherwise

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ beside the fixtures
OUT = os.path.join(HERE, "reference")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import reference_quant  # noqa: E402
import reference_text  # noqa: E402
import reference_train  # noqa: E402
from reference_common import patch_bnb_cpu_kernels, save_golden, versions, write_json  # noqa: E402

SEEDS = {"corpus": 97, "cases": 98, "model": 5, "inputs": 31, "quant": 2027, "lora": 4321}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
          "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
TOKENIZER_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_bos_token": False, "add_eos_token": False,
    "clean_up_tokenization_spaces": False, "model_max_length": 256, "chat_template": CHATML,
}
SPECIAL_MAP = {k: TOKENIZER_CONFIG[k] for k in ["bos_token", "eos_token", "pad_token", "unk_token"]}
CHAT_CASES = [
    [("user", "Name a planet."), ("assistant", "Mars is a planet.")],
    [("system", "Answer briefly."), ("user", "How many legs has a cat?"), ("assistant", "Four.")],
    [("user", "翻译：早上好"), ("assistant", "Good morning.")],
    [("user", "List three numbers."), ("assistant", "7, 8 and 9."), ("user", "And one more?"), ("assistant", "10.")],
    [("user", "Emoji test 🚀\twith tab"), ("assistant", "ok 👍🏽\n")],
]


def build_tokenizer(summary):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    lines = reference_text.corpus(SEEDS["corpus"])
    text = "\n".join(lines) + "\n"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    assert tok.get_vocab_size() == 512 and [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2]
    d = os.path.join(OUT, "tokenizer")
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), TOKENIZER_CONFIG)
    write_json(os.path.join(d, "special_tokens_map.json"), SPECIAL_MAP)
    with open(os.path.join(d, "tokenizer_cases.jsonl"), "w", encoding="utf-8") as f:
        for category, case in reference_text.tokenizer_cases(SEEDS["cases"]):
            enc = tok.encode(case, add_special_tokens=False)
            assert tok.decode(enc.ids, skip_special_tokens=False) == case, case
            f.write(json.dumps({"category": category, "text": case, "ids": enc.ids, "tokens": enc.tokens},
                               ensure_ascii=False) + "\n")
    summary["tokenizer"] = {"corpus_lines": len(lines), "corpus_bytes": len(text.encode()),
                            "corpus_sha256": hashlib.sha256(text.encode()).hexdigest(), "n_cases": 300}
    return d


def chat_template_cases(tok_dir):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    assert hf.chat_template == CHATML
    cases = []
    for conversation in CHAT_CASES:
        messages = [{"role": r, "content": c} for r, c in conversation]
        for gen in (False, True):
            text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            ids = hf(text, add_special_tokens=False)["input_ids"]
            assert hf.decode(ids) == text
            cases.append({"messages": messages, "add_generation_prompt": gen, "text": text, "ids": ids})
    write_json(os.path.join(tok_dir, "chat_template_cases.json"), cases)
    return hf


def build_models(tok_dir):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
                         rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(SEEDS["model"])
    model = LlamaForCausalLM(config).float().eval()
    stds = {"embed_tokens": 1.0, "q_proj": 0.25, "k_proj": 0.25, "v_proj": 0.12, "o_proj": 0.12, "gate_proj": 0.12,
            "up_proj": 0.12, "down_proj": 0.08, "lm_head": 0.25}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                kind = next(k for k in stds if k in name)
                p.normal_(0, stds[kind])
    for sub, dtype in [("tiny-llama", torch.float32), ("tiny-llama-bf16", torch.bfloat16)]:
        d = os.path.join(OUT, sub)
        model.to(dtype).save_pretrained(d, safe_serialization=True)
        for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
            shutil.copy(os.path.join(tok_dir, f), os.path.join(d, f))
    return model.float()


def load(sub, dtype=torch.float32):
    from transformers import LlamaForCausalLM
    return LlamaForCausalLM.from_pretrained(os.path.join(OUT, sub), dtype=dtype, attn_implementation="eager").eval()


def logits_goldens(summary):
    model = load("tiny-llama")
    g = torch.Generator().manual_seed(SEEDS["inputs"])
    ids = torch.randint(3, 512, (2, 24), generator=g)
    captured = {}
    hooks = [model.model.embed_tokens.register_forward_hook(lambda m, i, o: captured.__setitem__("embed", o)),
             model.model.norm.register_forward_hook(lambda m, i, o: captured.__setitem__("final_norm", o))]
    for n, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(
            lambda m, i, o, n=n: captured.__setitem__(f"layer{n}", o[0] if isinstance(o, tuple) else o)))
    positions = torch.arange(24).unsqueeze(0).expand(2, 24)
    with torch.no_grad():
        logits = model(ids, position_ids=positions).logits
        for h in hooks:
            h.remove()
        sdpa = load("tiny-llama")
        sdpa.config._attn_implementation = "sdpa"
        sdpa_logits = sdpa(ids).logits
        up = load("tiny-llama-bf16", torch.float32)(ids).logits
        native = load("tiny-llama-bf16", torch.bfloat16)(ids).logits.float()
        padded = ids.clone()
        padded[1, 17:] = 0
        mask = torch.ones_like(ids)
        mask[1, 17:] = 0
        padded_logits = model(padded, attention_mask=mask).logits
        unpadded_row1 = model(ids[1:, :17]).logits
    tensors = {"input_ids": ids, "fp32.logits": logits, "bf16_upcast_fp32.logits": up, "bf16_native.logits": native,
               "padded.input_ids": padded, "padded.attention_mask": mask, "padded.logits": padded_logits}
    for k in ["embed", "layer0", "layer1", "final_norm"]:
        tensors[f"fp32.residual.{k}"] = captured[k]
    info = {"fp32.logits": "tiny-llama (float32), eager attention, no attention_mask, position_ids = arange(24)",
            "residual": "forward hooks: embed = embedding output; layerN = residual stream after decoder layer N; "
                        "final_norm = model.norm output (input of lm_head)",
            "bf16_upcast_fp32.logits": "tiny-llama-bf16 loaded with dtype=float32 (bf16 weights upcast exactly), fp32 compute",
            "bf16_native.logits": "tiny-llama-bf16 loaded with dtype=bfloat16 and computed in bf16 on CPU (LOOSE reference only)",
            "padded": "row 1 right-padded after 17 tokens with pad id 0, attention_mask given; compare only where mask==1"}
    save_golden(tensors, os.path.join(OUT, "golden", "logits.safetensors"), info)
    top2 = logits.topk(2, dim=-1).values
    summary["logits"] = {
        "model_stats": {"logits_std": logits.std().item(), "logits_absmax": logits.abs().max().item(),
                        "min_top1_top2_gap": (top2[..., 0] - top2[..., 1]).min().item()},
        "padded_vs_unpadded_row1_maxdiff": (padded_logits[1, :17] - unpadded_row1[0]).abs().max().item(),
        "padded_row0_vs_fp32_maxdiff": (padded_logits[0] - logits[0]).abs().max().item(),
        "eager_vs_sdpa_maxdiff": (logits - sdpa_logits).abs().max().item(),
        "bf16_upcast_vs_fp32_maxdiff": (up - logits).abs().max().item(),
        "bf16_native_vs_bf16_upcast_maxdiff": (native - up).abs().max().item()}
    return model


def generate_golden(model, hf_tok, summary):
    prompt = hf_tok.apply_chat_template([{"role": "user", "content": "Tell me about the river."}], tokenize=False,
                                        add_generation_prompt=True)
    prompt_ids = hf_tok(prompt, add_special_tokens=False)["input_ids"]
    ids, gaps = list(prompt_ids), []
    with torch.no_grad():
        for _ in range(16):
            last = model(torch.tensor([ids])).logits[0, -1]
            top = last.topk(2).values
            gaps.append((top[0] - top[1]).item())
            ids.append(int(last.argmax()))
        hf = model.generate(torch.tensor([prompt_ids]), max_new_tokens=16, do_sample=False, eos_token_id=None,
                            pad_token_id=0)[0, len(prompt_ids):].tolist()
    greedy = ids[len(prompt_ids):]
    assert min(gaps) > 1e-3, gaps
    write_json(os.path.join(OUT, "golden", "generate.json"), {
        "prompt": prompt, "prompt_ids": prompt_ids, "greedy_ids": greedy, "top1_top2_gap_per_step": gaps,
        "method": "16 steps of: full forward (no KV cache, fp32 tiny-llama), append argmax of last-position logits; "
                  "EOS not special",
        "hf_generate_kv_cache_ids": hf, "hf_generate_matches": hf == greedy, "decoded": hf_tok.decode(greedy)})
    summary["logits"]["generate_matches_hf"] = hf == greedy


def schedules():
    import math
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup
    lr, total = 3e-4, 8
    out = {"a_reference_cosine": {
        "formula": "lr/10 + 0.5*lr*(1+cos(pi*step/total))", "lr": lr, "total": total, "steps": list(range(total + 1)),
        "values": [lr / 10 + 0.5 * lr * (1 + math.cos(math.pi * s / total)) for s in range(total + 1)],
        "note": "steps 1..total are the ones a 1-based loop uses; step 0 (=1.1*lr) is included for 0-based loops"}}
    for key, make in [("b_hf_cosine_with_warmup", get_cosine_schedule_with_warmup),
                      ("c_hf_linear_with_warmup", get_linear_schedule_with_warmup)]:
        base, warmup, steps = 2e-3, 3, 10
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
        sched = make(opt, num_warmup_steps=warmup, num_training_steps=steps)
        used = []
        for _ in range(steps):
            used.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[key] = {"base_lr": base, "num_warmup_steps": warmup, "num_training_steps": steps,
                    "lr_used_at_optimizer_step_1_to_10": used,
                    "lr_after_10_scheduler_steps": opt.param_groups[0]["lr"],
                    "note": "LambdaLR: optimizer step k (1-based) uses base_lr * lambda(k-1); the first step therefore "
                            "uses lr = 0"}
    write_json(os.path.join(OUT, "golden", "schedules.json"), out)
    return out


def manifest():
    entries = {}
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, OUT)
            if rel == "MANIFEST.json":
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            entries[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_json(os.path.join(OUT, "MANIFEST.json"), dict(sorted(entries.items())))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "golden"))
    patch_bnb_cpu_kernels()
    summary = {"versions": versions(), "torch_num_threads": torch.get_num_threads(),
               "bnb_cpu_kernels_patched_to_default_backend": True, "seeds": SEEDS}
    tok_dir = build_tokenizer(summary)
    hf_tok = chat_template_cases(tok_dir)
    build_models(tok_dir)
    model = logits_goldens(summary)
    generate_golden(model, hf_tok, summary)
    summary["quant"] = reference_quant.write(os.path.join(OUT, "golden"), SEEDS["quant"])
    summary["lora"], summary["qlora"] = reference_train.write(OUT, hf_tok, SEEDS["lora"])
    summary["schedules"] = schedules()
    write_json(os.path.join(OUT, "generation_summary.json"), summary)
    shutil.copy(os.path.join(HERE, "reference_README.md"), os.path.join(OUT, "README.md"))
    manifest()
    print(json.dumps(summary["logits"], indent=1))


if __name__ == "__main__":
    main()
