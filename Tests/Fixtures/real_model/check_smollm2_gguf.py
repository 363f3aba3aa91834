"""Tokenizer goldens for a GGUF file: the tokenizer transformers 5.25 builds from it (its GGUF converter,
transformers.integrations.gguf.gguf_tokenizer_mapping, fed by gguf-py's reader so torch is not needed) encodes
each text; the ids go to Tests/Fixtures/gguf/smollm2_tokenizer_cases.json. With a qlora-run converted
directory as DIR, also checks that `tokenizers` on DIR/tokenizer.json encodes the same.
  python check_smollm2_gguf.py MODEL.gguf DIR [EXTRA_TEXTS.json] [OUT.json]
"""
import sys, json, gguf
import transformers.integrations.gguf.gguf_tokenizer_mapping as m
from tokenizers import Tokenizer
f, d = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(f)
def val(k):
    fl = r.fields[k]; return fl.contents()
meta = {k: val(k) for k in r.fields if k.startswith('tokenizer.') or k == 'general.architecture'}
arch = meta['general.architecture']
tok = {name: meta[f"tokenizer.{key}"] for key, name in m.GGUF_TOKENIZER_MAPPING['tokenizer'].items() if f"tokenizer.{key}" in meta}
ref, _ = m.convert_gguf_tokenizer(arch, tok)
ours = Tokenizer.from_file(d + '/tokenizer.json')
texts = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else []
texts += ["What is the capital of France?", "Hello world 12345 and 3.14159!", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
         "  leading spaces\tand tabs\n\nnewlines", "Ünïcödé 漢字 emoji 🤗 test", "don't you'll I'm", "x = [1, 2, 3]; print(x)", "<think>maybe</think>"]
bad = 0; cases = []
for t in texts:
    a = ref.encode(t, add_special_tokens=False).ids; b = ours.encode(t, add_special_tokens=False).ids
    cases.append({"text": t, "ids": a})
    if a != b: bad += 1; print('DIFF', repr(t), a[:20], b[:20])
print('texts', len(texts), 'differ', bad)
json.dump(cases, open(sys.argv[4] if len(sys.argv) > 4 else '/tmp/g/tok_cases.json','w'), ensure_ascii=False, indent=0)
