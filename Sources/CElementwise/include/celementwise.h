#ifndef QLORA_CELEMENTWISE_H
#define QLORA_CELEMENTWISE_H
#include <stdint.h>

// Elementwise kernels of the training step (SwiGLU with its exp, AdamW, bf16 rounding) built for
// AVX-512, AVX2 and portable C and chosen once at run time, because Swift compiles the Kernels
// target for the baseline x86-64 (SSE2) and has no per-function target attribute. Every path
// computes each element with the same operations in the same order as the Swift kernels they
// replace (no fused multiply-add: -ffp-contract=off), so all paths and the Swift code give the
// same bits (KernelsTests/ElementwiseCTests).

/// 2 AVX-512, 1 AVX2, 0 portable: CISA's detection (shared with CNF4, capped by the same QLORA_NF4_ISA),
/// so CI runs each build on whatever machine it has.
int qlora_elementwise_isa(void);

/// out[i] = exp(x[i]): Kernels' FastMath.exp (Cephes expf reduction and polynomial), lane for lane.
void qlora_exp(const float *x, float *out, int64_t count);

/// out[i] = silu(gate[i]) * up[i] = (g / (1 + exp(-g))) * up.  out may alias gate.
void qlora_swiglu_forward(float *out, const float *gate, const float *up, int64_t count);

/// grad_gate[i] += d * up * s * (1 + g (1 - s)),  grad_up[i] += d * g * s,  s = 1 / (1 + exp(-g)).
void qlora_swiglu_backward(float *grad_gate, float *grad_up, const float *grad_out, const float *gate,
                           const float *up, int64_t count);

/// torch.optim.AdamW's single-tensor step on count elements (Training's AdamW):
///   p *= decay; m += (1 - b1)(g - m); v = v b2 + (1 - b2) g g;
///   p += -step_size * (m / (sqrt(v) / bias2_sqrt + eps)).
void qlora_adamw_step(float *p, float *m, float *v, const float *g, int64_t count, float decay,
                      float one_minus_beta1, float beta2, float one_minus_beta2, float bias2_sqrt,
                      float eps, float step_size);

/// out[i] = x[i] rounded to bfloat16 (nearest, ties to even; NaN stays a quiet NaN). out may alias x.
void qlora_round_bf16(const float *x, float *out, int64_t count);

/// x[n, c] = round_bf16(x[n, c] + bias[c]) for rows x (rows, channels): a bf16 layer's biased output.
void qlora_round_bf16_bias(float *x, const float *bias, int64_t rows, int64_t channels);
#endif
