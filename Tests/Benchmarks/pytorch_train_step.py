#!/usr/bin/env python3
"""The PyTorch side of the training-step benchmark (issue 15 targets): the same shapes and step as
`qlora-run bench` — rank-16 LoRA on q_proj/o_proj, every position supervised, clip 1.0, AdamW — with
PEFT on an fp32 base and with PEFT + bitsandbytes on an NF4 double-quant base, fp32 compute and the
QLoRA notebook's bnb_4bit_compute_dtype=bfloat16.

    python Tests/Benchmarks/pytorch_train_step.py [--quick]      (torch, transformers, peft, bitsandbytes)

Prints one line per row, `pytorch <row>: <tokens/s> tokens/s`, the median of 5 timed steps after 2
warm-up steps, torch on all cores of the machine. Exit 3 (and one line saying so) when torch is absent,
so `compare_with_pytorch.sh` can skip the ratios. --quick: the MiniMind shape only.
"""
import os, statistics, sys, time

try:
    import torch
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
except ImportError as error:
    print(f"pytorch: skipped ({error.name} not installed)")
    sys.exit(3)

SHAPES = {
    # MiniMind as the notebook builds it (a Llama-layout decoder), batch 2 x 512.
    "MiniMind B2x512": (dict(vocab_size=6400, hidden_size=512, intermediate_size=1408, num_hidden_layers=2,
                             num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True), 2, 512),
    # SmolLM-135M's shape, batch 1 x 512.
    "SmolLM-135M B1x512": (dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True), 1, 512),
}


def model_for(config, quantized, directory, compute=torch.float32):
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(max_position_embeddings=1024, rms_norm_eps=1e-5, **config)).eval()
    if not quantized:
        return base
    # bitsandbytes quantizes at load time: save the random model once, load it 4-bit.
    base.save_pretrained(directory, safe_serialization=True)
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=compute)
    model = LlamaForCausalLM.from_pretrained(directory, quantization_config=bnb, device_map="cpu", dtype=torch.float32)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def tokens_per_second(config, B, T, quantized, directory, compute=torch.float32):
    model = get_peft_model(model_for(config, quantized, directory, compute),
                           LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "o_proj"]))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, config["vocab_size"], (B, T), generator=torch.Generator().manual_seed(1))
    times = []
    for step in range(7):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return B * T / statistics.median(times)


def main():
    import tempfile
    torch.set_num_threads(os.cpu_count() or 1)
    quick = "--quick" in sys.argv
    for name, (config, B, T) in SHAPES.items():
        if quick and not name.startswith("MiniMind"):
            continue
        for label, quantized, compute in (("fp32 LoRA", False, torch.float32), ("NF4 QLoRA", True, torch.float32),
                                          ("NF4 QLoRA bf16 compute", True, torch.bfloat16)):
            with tempfile.TemporaryDirectory() as directory:
                rate = tokens_per_second(config, B, T, quantized, directory, compute)
                print(f"pytorch train step {name} ({label}): {rate:.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
