"""Helpers shared by the parts of generate_reference.py: output writing, versions, the bitsandbytes CPU patch."""
import json
import os
import sys
import warnings

import torch
from safetensors.torch import save_file


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def save_golden(tensors, path, info):
    """A golden safetensors file: contiguous CPU tensors, `__metadata__` = {"info": <JSON text>}."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, path, metadata={"info": json.dumps(info, sort_keys=True)})


def versions():
    import bitsandbytes
    import numpy
    import peft
    import safetensors
    import tokenizers
    import transformers
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "bitsandbytes": bitsandbytes.__version__, "safetensors": safetensors.__version__,
            "tokenizers": tokenizers.__version__, "numpy": numpy.__version__}


def patch_bnb_cpu_kernels():
    """Sends bitsandbytes' CPU dequantize_4bit / quantize_blockwise / dequantize_blockwise to its own pure-torch
    backend (registered as CompositeExplicitAutograd). The native CPU library of bitsandbytes 0.50.2 indexes absmax
    per row in its AVX-512 dequantize_4bit (wrong when in_features % blocksize != 0) and quantizes 8-bit blocks with
    an approximate lookup table; the pure-torch code is exact and matches the CUDA kernels."""
    import bitsandbytes  # noqa: F401  (defines the ops)
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    for name in ["dequantize_4bit", "quantize_blockwise", "dequantize_blockwise"]:
        op = getattr(torch.ops.bitsandbytes, name).default

        def kernel(*args, op=op):
            return op.redispatch(keys, *args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.library.register_kernel("bitsandbytes::" + name, "cpu")(kernel)


