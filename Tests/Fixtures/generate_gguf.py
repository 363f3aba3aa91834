"""Writes Tests/Fixtures/gguf/quants.json: ggml block formats as gguf-py (llama.cpp's Python package) encodes
and decodes them, for TensorIOTests/GGUFQuantsTests. Run by hand in a venv with `pip install gguf==0.19.0 numpy`;
tests never run Python.

- encode: 128 fixed values (a smooth wave with a few outliers, exactly representable as float32) quantized by
  gguf.quants.quantize to Q8_0, Q4_0, F16 and BF16 (bytes as hex).
- decode: for each readable block type, 2 blocks of seeded random bytes (f16 scales kept finite and small) and
  the values gguf.quants.dequantize reads from them.
"""
import json, math, os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

values = np.array([math.sin(i * 0.37) * (1 + (i % 7)) / 8 + (3.5 if i == 77 else 0) - (2.25 if i == 5 else 0)
                   for i in range(128)], dtype=np.float32)
out = {"gguf_version": gguf.__version__ if hasattr(gguf, "__version__") else "unknown",
       "values": [float(v) for v in values], "encode": {}, "decode": {}}
for t in [T.Q8_0, T.Q4_0, T.F16, T.BF16]:
    out["encode"][t.name] = bytes(np.asarray(gguf.quants.quantize(values.reshape(2, 64), t)).view(np.uint8).ravel()).hex()

rng = np.random.default_rng(7)
def f16_bytes(v):
    return np.array([v], dtype=np.float16).view(np.uint8).tolist()
for t in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
    block, size = gguf.GGML_QUANT_SIZES[t]
    raw = bytearray(rng.integers(0, 256, size=2 * size, dtype=np.uint8).tobytes())
    for b in range(2):
        o = b * size
        if t == T.Q6_K:   # d is the last 2 bytes
            raw[o + size - 2:o + size] = bytes(f16_bytes(0.01 + 0.003 * b))
        else:             # d (and m / dmin) lead the block
            raw[o:o + 2] = bytes(f16_bytes(0.02 + 0.01 * b))
            if t in (T.Q4_1, T.Q5_1, T.Q4_K, T.Q5_K):
                raw[o + 2:o + 4] = bytes(f16_bytes(-0.015 + 0.004 * b))
    data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
    deq = gguf.quants.dequantize(data, t).astype(np.float32).ravel()
    out["decode"][t.name] = {"bytes": bytes(raw).hex(), "values": [float(v) for v in deq]}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf", "quants.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path)
