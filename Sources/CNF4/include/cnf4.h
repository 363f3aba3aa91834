#ifndef QLORA_CNF4_H
#define QLORA_CNF4_H
#include <stdint.h>

// Fused 4-bit (NF4/FP4) products for micro-batches of few rows: each weight row (or column slice) is
// decoded from its codes straight into a small L1-resident buffer and used at once, instead of
// dequantizing whole weight tiles to memory for sgemm. Codes: bitsandbytes packing (two per byte,
// the first element in the high nibble); value = table[code] * absmax[block], optionally rounded to
// bfloat16 (bnb_4bit_compute_dtype=bfloat16). Requires in_features % block_size == 0 and
// block_size % 16 == 0, so a row never starts inside a block.

/// The instruction set the kernels use here: 3 AVX-512 with AVX512-BF16 (the bf16-compute forward),
/// 2 AVX-512, 1 AVX2 + FMA, 0 portable C (QLORA_NF4_ISA caps it).
int qlora_nf4_isa(void);

/// y[n, o] = sum_i x[n, i] * W[o, i] for o in [o0, o1): x (M, I), y (M, O). With round_bf16 the
/// input must hold bf16 values (the caller rounds it). scratch: I floats, and (M * I + 1) / 2 more with round_bf16.
void qlora_nf4_forward(const uint8_t *packed, const float *absmax, const float *table, int block_size,
                       int in_features, int out_features, int o0, int o1,
                       const float *x, int rows, float *y, int round_bf16, float *scratch);

/// dx[n, i] += sum_o dy[n, o] * W[o, i] for i in [i0, i1) (block-aligned): dy (M, O), dx (M, I).
/// scratch: i1 - i0 floats.
void qlora_nf4_backward(const uint8_t *packed, const float *absmax, const float *table, int block_size,
                        int in_features, int out_features, int i0, int i1,
                        const float *dy, int rows, float *dx, int round_bf16, float *scratch);

/// out[0 ..< count] = the values of flat elements [e0, e0 + count), fp32 (or rounded to bf16 with round_bf16):
/// the tiled path's dequantization, bit-identical to Quant's Swift decoder. e0 and count whole blocks.
void qlora_nf4_dequantize(const uint8_t *packed, const float *absmax, const float *table, int block_size,
                          int64_t e0, int64_t count, int round_bf16, float *out);
#endif
