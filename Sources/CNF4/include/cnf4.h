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
/// 2 AVX-512, 1 AVX2 + FMA, 0 portable C (QLORA_NF4_ISA caps it) — CISA's detection, shared with CElementwise.
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
// ---- bf16 products with AVX512-BF16 (bf16_gemm.c): the tiled path of bf16 compute ----
// Operands hold bf16 values in fp32 storage; sums are fp32 (vdpbf16ps: exact products, denormals
// flushed to zero), in another order than sgemm's.

/// 1 when qlora_bf16_gemm can run here (AVX512-BF16, and QLORA_NF4_ISA does not cap it below 3).
int qlora_bf16_gemm_available(void);
/// uint16 elements of A (rows, depth) packed by qlora_bf16_pack_rows, and of one B panel scratch.
int64_t qlora_bf16_packed_rows_size(int rows, int depth);
int64_t qlora_bf16_panel_size(int depth);
/// A (rows, depth; row stride lda) -> its bf16 bits, rows padded to the kernel's height, depth to even.
void qlora_bf16_pack_rows(const float *a, int lda, int rows, int depth, uint16_t *out);
/// C[:, n0 ..< n1] (M rows, stride ldc) = (accumulate ? C : 0) + A · B over depth K, with B (N, K) when
/// b_transposed (C = A · Bᵀ) or (K, N) otherwise (C = A · B), stride ldb; only B's columns n0 ..< n1 are read.
/// a_packed from qlora_bf16_pack_rows; panel: qlora_bf16_panel_size(K) scratch elements. Callers split
/// [0, N) among threads by n0 ..< n1, best in multiples of the panel width (panel_size / even K).
void qlora_bf16_gemm(const uint16_t *a_packed, int M, int K, const float *b, int ldb, int b_transposed,
                     int n0, int n1, float *c, int ldc, int accumulate, uint16_t *panel);
#endif
