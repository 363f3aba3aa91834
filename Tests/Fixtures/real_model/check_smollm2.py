"""The numbers RealModelTests compares with: transformers' fp32 eval loss on toydata/eval.jsonl rendered with
SmolLM2's own chat template (supervised: each assistant reply and its <|im_end|>), and the greedy completion of
"Capital of France?" through apply_chat_template. Run after convert_smollm2.py.
"""
import json, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d="/tmp/smollm2-hf"
tok=AutoTokenizer.from_pretrained(d); model=AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
tot=0.0; n=0
for line in open("toydata/eval.jsonl"):
    msgs=json.loads(line)["conversations"]
    text=tok.apply_chat_template(msgs, tokenize=False)
    enc=tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids=enc["input_ids"]; offs=enc["offset_mapping"]
    # supervised: assistant content + <|im_end|> after it (gen-prompt method on this template)
    spans=[]
    for i,m in enumerate(msgs):
        if m["role"]!="assistant": continue
        a=len(tok.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True))
        b=len(tok.apply_chat_template(msgs[:i+1], tokenize=False))
        spans.append((a, b-1))  # drop the trailing "\n"
    mask=[1 if any(s<en and st<e_ for st,en in spans) else 0 for (s,e_) in offs]
    x=torch.tensor([ids])
    with torch.no_grad(): logits=model(x).logits[0]
    lp=torch.log_softmax(logits.double(),-1)
    for t in range(1,len(ids)):
        if mask[t]: tot-=lp[t-1,ids[t]].item(); n+=1
print("loss", tot/n, "tokens", n)
p=tok.apply_chat_template([{"role":"user","content":"Capital of France?"}], tokenize=False, add_generation_prompt=True)
x=tok(p, add_special_tokens=False, return_tensors="pt")
out=model.generate(**x, max_new_tokens=16, do_sample=False)
print(repr(tok.decode(out[0][x["input_ids"].shape[1]:], skip_special_tokens=True)))
