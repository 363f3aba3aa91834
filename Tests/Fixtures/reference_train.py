"""golden/lora_train and golden/qlora_train: 12 AdamW steps of PEFT LoRA on tiny-llama, fp32 and NF4 base.

PEFT LoraConfig(r=8, lora_alpha=16, lora_dropout=0, target q_proj/o_proj, bias none); torch.manual_seed(seed)
before get_peft_model. Loss per batch = sum(CE(logits[:, :-1], ids[:, 1:]) * mask[:, 1:]) / sum(mask[:, 1:]).
torch.optim.AdamW(lr 1e-3, wd 0.01, foreach=False), clip_grad_norm_(1.0), batch 2, step s uses samples
[2(s-1) % 4, 2(s-1) % 4 + 1]. The 4-bit run loads the base with transformers' BitsAndBytesConfig (nf4,
double quant, fp32 compute, lm_head skipped) on CPU.
"""
import os

import torch
import torch.nn.functional as nnf

from reference_common import save_golden, write_json

CONVERSATIONS = [
    [("user", "Name a planet."), ("assistant", "Mars is red.")],
    [("user", "Say thanks in Chinese."), ("assistant", "谢谢！")],
    [("user", "What comes after 7?"), ("assistant", "8 comes after 7.")],
    [("user", "Give me a short word."), ("assistant", "Sun, a short word.")],
]
SEQ_LEN, STEPS, BATCH, PAD = 48, 12, 2, 0
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "o_proj"], bias="none")
OPTIM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)


def chat_data(hf_tok):
    """ids / loss_mask / attention_mask [4, SEQ_LEN]: mask 1 on each assistant reply and its <|im_end|>."""
    texts, rows, masks = [], [], []
    for conv in CONVERSATIONS:
        text, spans = "", []
        for role, content in conv:
            text += f"<|im_start|>{role}\n"
            if role == "assistant":
                spans.append((len(text), len(text) + len(content) + len("<|im_end|>")))
            text += content + "<|im_end|>\n"
        enc = hf_tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        mask = [int(any(a <= s < b for a, b in spans)) for s, _ in enc["offset_mapping"]]
        assert len(ids) < SEQ_LEN and hf_tok.decode(ids) == text
        texts.append(text)
        rows.append(ids + [PAD] * (SEQ_LEN - len(ids)))
        masks.append(mask + [0] * (SEQ_LEN - len(ids)))
    ids = torch.tensor(rows)
    mask = torch.tensor(masks)
    attention = (torch.arange(SEQ_LEN)[None, :] < torch.tensor([len(hf_tok(t, add_special_tokens=False)["input_ids"])
                                                                 for t in texts])[:, None]).long()
    return texts, ids, mask, attention


def batch_loss(model, ids, mask):
    logits = model(input_ids=ids).logits
    ce = nnf.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    weights = mask[:, 1:].reshape(-1).float()
    return (ce * weights).sum() / weights.sum()


def lora_tensors(model, prefix, grads=False):
    out = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            out[prefix + name.replace(".default", "")] = (p.grad if grads else p).detach().clone()
    return out


def run(base_dir, out_dir, hf_tok, seed, quantized, compute=torch.float32):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig, LlamaForCausalLM
    cwd = os.getcwd()
    os.chdir(base_dir)  # so PEFT records base_model_name_or_path "tiny-llama"
    try:
        if quantized:
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=compute, llm_int8_skip_modules=["lm_head"])
            model = LlamaForCausalLM.from_pretrained("tiny-llama", quantization_config=bnb, device_map="cpu",
                                                     dtype=torch.float32, attn_implementation="eager")
        else:
            model = LlamaForCausalLM.from_pretrained("tiny-llama", dtype=torch.float32, attn_implementation="eager")
    finally:
        os.chdir(cwd)
    info, extra = {}, {}
    texts, ids, mask, attention = chat_data(hf_tok)
    if quantized and compute != torch.float32:
        import bitsandbytes as bnb_lib
        for module in model.modules():
            if isinstance(module, bnb_lib.nn.Linear4bit):
                module.support_avx512bf16_for_cpu = False  # the plain dequantize + F.linear path
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model.train()
    elif quantized:
        import bitsandbytes as bnb_lib
        import bitsandbytes.functional as F
        fp32 = LlamaForCausalLM.from_pretrained(os.path.join(base_dir, "tiny-llama"), dtype=torch.float32,
                                                attn_implementation="eager")
        layers, qb = [], {}
        for name, module in model.named_modules():
            if isinstance(module, bnb_lib.nn.Linear4bit):
                module.support_avx512bf16_for_cpu = False  # the plain dequantize + F.linear path
                layers.append(name)
                st = module.weight.quant_state
                key = name + ".weight"
                qb[key + ".fp32"] = fp32.get_submodule(name).weight
                qb[key + ".codes"] = module.weight.data
                qb[key + ".absmax_codes"] = st.absmax
                qb[key + ".state2_absmax"] = st.state2.absmax
                qb[key + ".offset"] = st.offset.reshape(1)
                qb[key + ".dequant"] = F.dequantize_4bit(module.weight.data, st)
        assert len(layers) == 14
        save_golden(qb, os.path.join(out_dir, "quantized_base.safetensors"),
                    {"layers": layers, "quant": "nf4, blocksize 64, double quant (state2 blocksize 256, dynamic map), compute fp32"})
        model.save_pretrained(os.path.join(out_dir, "base-nf4-dq"), safe_serialization=True)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model.train()
        with torch.no_grad():
            step0 = model(input_ids=ids).logits
        save_golden({"input_ids": ids, "logits": step0}, os.path.join(out_dir, "logits_step0.safetensors"),
                    {"what": "train-mode forward of the nf4+dq quantized tiny-llama (no LoRA) on the 4 chat samples"})
        # The quantized forward equals the fp32 model carrying the dequantized weights.
        with torch.no_grad():
            for name in layers:
                fp32.get_submodule(name).weight.copy_(qb[name + ".weight.dequant"])
            extra["qlora_forward_vs_fp32_with_dequant_weights_maxdiff"] = (fp32(ids).logits - step0).abs().max().item()
    torch.manual_seed(seed)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **LORA))
    layer_class = type(model.base_model.model.model.layers[0].self_attn.q_proj)
    info["lora_layer_class"] = f"{layer_class.__module__}.{layer_class.__name__}"
    model.save_pretrained(os.path.join(out_dir, "adapter_init"))
    params = lora_tensors(model, "init.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, **OPTIM)
    model.train()
    steps = []
    for s in range(1, STEPS + 1):
        first = (2 * (s - 1)) % 4
        rows = [first, first + 1]
        opt.zero_grad()
        loss = batch_loss(model, ids[rows], mask[rows])
        loss.backward()
        if s == 1:
            params.update(lora_tensors(model, "step1.grad.", grads=True))
        norm = torch.nn.utils.clip_grad_norm_(trainable, max_norm=1.0).item()
        opt.step()
        if s == 1:
            params.update(lora_tensors(model, "step1.after."))
        steps.append({"step": s, "batch_indices": rows, "lr": OPTIM["lr"], "loss": loss.item(),
                      "grad_norm_before_clip": norm, "clip_coef": min(1.0, 1.0 / (norm + 1e-6))})
    params.update(lora_tensors(model, "final."))
    with torch.no_grad():
        final_all = batch_loss(model, ids, mask).item()
    model.save_pretrained(os.path.join(out_dir, "adapter_final"))
    save_golden(params, os.path.join(out_dir, "lora_params.safetensors"),
                {"init.*": "LoRA weights right after get_peft_model (lora_A: PEFT kaiming-uniform draw, lora_B: zeros)",
                 "step1.grad.*": "raw gradients of the step-1 loss (before clip_grad_norm_; AdamW sees grad * clip_coef)",
                 "step1.after.*": "LoRA weights after the first optimizer step",
                 "final.*": "LoRA weights after the last optimizer step",
                 "naming": "PEFT adapter naming (the '.default' adapter name removed), same as adapter_model.safetensors"})
    save_golden({"input_ids": ids, "loss_mask": mask, "attention_mask": attention,
                 "labels_hf": torch.where(mask == 1, ids, torch.full_like(ids, -100))},
                os.path.join(out_dir, "data.safetensors"),
                {"what": "4 ChatML conversations right-padded with id 0; loss_mask 1 on assistant replies + <|im_end|>"})
    doc = {
        "what": (f"QLoRA (nf4 + double quant, {'fp32' if compute == torch.float32 else 'bf16'} compute)" if quantized else "LoRA (fp32)") + " fine-tuning of tiny-llama",
        "base_model": "../../tiny-llama",
        "lora": dict(LORA, scaling=LORA["lora_alpha"] / LORA["r"], init_lora_weights=True, use_rslora=False,
                     forward="y = base(x) + (x @ A^T) @ B^T * (lora_alpha / r)"),
        "optimizer": dict(OPTIM, type="torch.optim.AdamW", amsgrad=False, schedule="constant"),
        "clip_grad_norm": {"max_norm": 1.0, "norm_type": 2, "eps_in_coef": 1e-6,
                           "rule": "total = ||all grads||_2; coef = min(1, max_norm / (total + 1e-6)); grads *= coef"},
        "batch_size": BATCH, "n_steps": STEPS,
        "batch_order": "step s (1-based) uses samples [(2(s-1)) % 4, (2(s-1)) % 4 + 1]",
        "model_mode": "model.train() (dropout is 0 everywhere, so train == eval numerically)",
        "seed": seed, "steps": steps, "final_loss_all4": final_all, "info": dict(info, **extra),
        "data": {"texts": texts, "seq_len": SEQ_LEN, "pad_id": PAD, "input_ids": ids.tolist(),
                 "loss_mask": mask.tolist(), "attention_mask": attention.tolist(),
                 "loss": "sum(CE(logits[:, :-1], ids[:, 1:]) * mask[:, 1:]) / sum(mask[:, 1:])  (per batch)",
                 "note": "right padding + causal attention => padding never influences real positions; "
                         "model called with input_ids only"}}
    if quantized:
        doc["quantization"] = {"how": f"transformers BitsAndBytesConfig(load_in_4bit, nf4, double quant, compute {'fp32' if compute == torch.float32 else 'bf16'}, "
                                      "skip lm_head), device_map='cpu'", "blocksize": 64,
                               "prepare_model_for_kbit_training": "use_gradient_checkpointing=False",
                               "eval_fast_path": "Linear4bit.support_avx512bf16_for_cpu set False"}
    write_json(os.path.join(out_dir, "steps.json"), doc)
    return dict(info, **extra)


def write(out, hf_tok, seed):
    lora = run(out, os.path.join(out, "golden", "lora_train"), hf_tok, seed, quantized=False)
    qlora = run(out, os.path.join(out, "golden", "qlora_train"), hf_tok, seed, quantized=True)
    # bnb_4bit_compute_dtype=torch.bfloat16, the QLoRA notebook's setting (issue 15 §4).
    run(out, os.path.join(out, "golden", "qlora_bf16_train"), hf_tok, seed, quantized=True, compute=torch.bfloat16)
    return lora, qlora
