"""golden/quant.safetensors: bitsandbytes quantize_4bit / dequantize_4bit on a few small tensors.

Every input x {nf4, fp4} x blocksize {64, 128} x double quant {off, on}, plus the code tables. The inputs are
chosen to reach every branch: blocks crossing rows (in_features 48 and 176), outliers, all-zero blocks, an odd
element count (short tail block and a padding nibble), and more than 256 blocks (two second-level blocks).
Keys: <t>.<nf4|fp4>.b<64|128>[.dq].<field>, as in the shared kit (see README.md).
"""
import os

import torch

from reference_common import save_golden

SHAPES = {"t0": [48, 64], "t1": [40, 48], "t2": [24, 176], "t3": [37, 13], "t4": [130, 130]}
OUTLIERS = {3: 1.25, 500: -1.75, 1100: 0.6, 1919: 2.5}


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    out = {name: torch.randn(shape, generator=g) * 0.02 for name, shape in SHAPES.items()}
    flat = out["t1"].view(-1)
    for i, v in OUTLIERS.items():
        flat[i] = v
    out["t2"].view(-1)[256:512] = 0
    return out


def write(golden_dir, seed):
    import bitsandbytes.functional as F
    tensors, cases = {}, 0
    dynamic = F.create_dynamic_map()
    tensors["table.nf4"] = F.get_4bit_type("nf4", device="cpu")
    tensors["table.fp4"] = F.get_4bit_type("fp4", device="cpu")
    tensors["table.dynamic8"] = dynamic
    state2_code_ok = True
    for name, x in inputs(seed).items():
        tensors[f"{name}.input"] = x
        for qt in ["nf4", "fp4"]:
            for bs in [64, 128]:
                for dq in [False, True]:
                    key = f"{name}.{qt}.b{bs}" + (".dq" if dq else "")
                    codes, state = F.quantize_4bit(x, blocksize=bs, quant_type=qt, compress_statistics=dq)
                    tensors[f"{key}.codes"] = codes
                    tensors[f"{key}.dequant"] = F.dequantize_4bit(codes, state)
                    if dq:
                        s2 = state.state2
                        state2_code_ok &= torch.equal(s2.code, dynamic)
                        tensors[f"{key}.absmax_codes"] = state.absmax
                        tensors[f"{key}.state2_absmax"] = s2.absmax
                        tensors[f"{key}.offset"] = state.offset.reshape(1)
                        tensors[f"{key}.state2_blocksize"] = torch.tensor([s2.blocksize], dtype=torch.int64)
                        tensors[f"{key}.absmax_dequant"] = F.dequantize_blockwise(state.absmax, s2) + state.offset
                    else:
                        tensors[f"{key}.absmax"] = state.absmax
                    cases += 1
    info = {"description": "bitsandbytes quantize_4bit/dequantize_4bit goldens (CPU, pure-torch backend), see README.md",
            "inputs": {n: f"{s} N(0,0.02)" for n, s in SHAPES.items()}, "seed": seed,
            "t1_outliers": {str(k): v for k, v in OUTLIERS.items()}, "t2_zero_flat_range": [256, 512],
            "state2_code_equals_table.dynamic8": state2_code_ok}
    save_golden(dict(sorted(tensors.items())), os.path.join(golden_dir, "quant.safetensors"), info)
    return {"cases": cases, "state2_code_equals_dynamic_map": state2_code_ok}
