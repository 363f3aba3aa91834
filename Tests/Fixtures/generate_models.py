#!/usr/bin/env python3
"""Tiny random checkpoints of Llama-family variants and transformers' fp32 logits on them.

    /tmp/fixtures-venv/bin/python Tests/Fixtures/generate_models.py   (see generate.py for the venv; needs torch)

Writes Tests/Fixtures/models/<variant>/ (config.json, model.safetensors) and
Tests/Fixtures/models/<variant>.golden.safetensors (input_ids (2, 16) int64, logits (2, 16, V) fp32).
Deterministic: fixed seeds, CPU, fp32.
"""
import os
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
BASE = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, torch_dtype="float32",
            bos_token_id=1, eos_token_id=2, pad_token_id=0)

VARIANTS = {
    # Llama 3.x frequency-dependent rotary scaling; original context 64 so every branch
    # (kept, interpolated, divided) is hit by head_dim 8's four frequencies.
    "llama3-rope": dict(model_type="llama", tie_word_embeddings=True, rope_theta=10000.0,
                        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "llama-linear-rope-untied": dict(model_type="llama", tie_word_embeddings=False, rope_theta=500000.0,
                                     rope_scaling={"rope_type": "linear", "factor": 2.0}),
    # Qwen3: per-head q/k RMSNorm and an explicit head_dim (q_proj 32 -> 64).
    "qwen3-head-norms": dict(model_type="qwen3", tie_word_embeddings=True, rope_theta=1000000.0, head_dim=16),
    # Mistral with a sliding window no shorter than the sequence: plain causal attention.
    "mistral-window": dict(model_type="mistral", tie_word_embeddings=False, rope_theta=1000000.0, sliding_window=16),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, extra in VARIANTS.items():
        torch.manual_seed(0)
        kw = dict(BASE); kw.update(extra)
        model_type = kw.pop("model_type")
        config = AutoConfig.for_model(model_type, **kw)
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            for p in model.parameters():   # larger than the 0.02 init so differences show in the logits
                p.normal_(0, 0.2)
            for n_, p in model.named_parameters():
                if "norm" in n_:
                    p.uniform_(0.5, 1.5)
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        if config.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        config.save_pretrained(out)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(3, kw["vocab_size"], (2, 16), generator=g)
        with torch.no_grad():
            logits = model(ids).logits.float()
        save_file({"input_ids": ids, "logits": logits.contiguous()}, os.path.join(HERE, name + ".golden.safetensors"))
        print(name, tuple(logits.shape))


if __name__ == "__main__":
    main()
