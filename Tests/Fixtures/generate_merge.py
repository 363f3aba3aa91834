#!/usr/bin/env python3
"""Merge goldens: a tiny Llama checkpoint, a PEFT LoRA adapter on every linear layer, and what PEFT's
merge_and_unload() makes of them (merged weights, and transformers' fp32 logits of the merged model).

    /work/venv/bin/python Tests/Fixtures/generate_merge.py      (torch, transformers, peft, tokenizers: requirements.txt)

Writes Tests/Fixtures/merge/
  base/        config.json, model.safetensors (fp32), tokenizer.json + tokenizer_config.json (byte-level BPE, ChatML)
  adapter/     adapter_config.json, adapter_model.safetensors (PEFT save_pretrained; r=4, alpha=8, all linear layers,
               lora_B drawn non-zero so the merge moves every weight)
  golden.safetensors
    input_ids (2, 12) int64
    merged.<name>      every weight of merge_and_unload()'s state dict (HF names, fp32)
    logits.merged      (2, 12, V) transformers on the merged model
    logits.adapter     (2, 12, V) the unmerged PeftModel (equals logits.merged to fp32 rounding)
MergeGoldenTests (EndToEndTests) runs load_checkpoint -> attach_adapters {init: {from: adapter}} -> merge on these
and compares. Deterministic: fixed seeds, CPU, one thread, fp32.
"""
import json, os
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "merge")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def tokenizer(path):
    corpus = [f"The {w} sat on the mat number {i}. Reverse: {w[::-1]}; uppercase: {w.upper()}."
              for i, w in enumerate(["cat", "dog", "bird", "fish", "lion", "wolf", "bear", "frog"] * 6)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        special_tokens=specials, show_progress=False))
    tok.save(os.path.join(path, "tokenizer.json"))
    json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "chat_template": CHATML, "add_bos_token": False,
               "tokenizer_class": "PreTrainedTokenizerFast"}, open(os.path.join(path, "tokenizer_config.json"), "w"), indent=1)
    return tok.get_vocab_size()


def main():
    base_dir, adapter_dir = os.path.join(HERE, "base"), os.path.join(HERE, "adapter")
    os.makedirs(base_dir, exist_ok=True)
    vocab = tokenizer(base_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0, dtype="float32")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Weights large enough that logits are not flat (std ~ 1): the merge's effect shows in them.
            p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else torch.randn_like(p) * (0.8 if "embed" in name else 0.25))
    model.save_pretrained(base_dir, safe_serialization=True)

    torch.manual_seed(1)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.2)
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's model card: nothing a test reads
    config_path = os.path.join(adapter_dir, "adapter_config.json")  # target_modules is a set: sort it for stable bytes
    adapter_config = json.load(open(config_path))
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    json.dump(adapter_config, open(config_path, "w"), indent=2, sort_keys=True)

    ids = torch.randint(3, vocab, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        adapter_logits = peft_model(ids).logits
        merged = peft_model.merge_and_unload().eval()
        merged_logits = merged(ids).logits
    golden = {"input_ids": ids.to(torch.int64), "logits.merged": merged_logits.contiguous(), "logits.adapter": adapter_logits.contiguous()}
    for name, t in merged.state_dict().items():
        golden["merged." + name] = t.detach().contiguous().clone()
    save_file(golden, os.path.join(HERE, "golden.safetensors"),
              metadata={"info": json.dumps({"torch": torch.__version__, "scaling": 2.0,
                                            "max_abs_merged_vs_adapter_logits": float((merged_logits - adapter_logits).abs().max())})})
    print("vocab", vocab, "max |merged - adapter| logits", float((merged_logits - adapter_logits).abs().max()))


if __name__ == "__main__":
    main()
