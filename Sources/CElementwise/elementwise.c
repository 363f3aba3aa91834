// Elementwise kernels (see celementwise.h). Each kernel is written once as a scalar loop over
// independent elements; BUILD() compiles that loop three times, for AVX-512, AVX2 and the baseline,
// and the loop vectoriser widens it to 16, 8 or 4 lanes. With -ffp-contract=off (Package.swift) no
// multiply-add is fused, so every build, and the Swift kernels, round each operation the same way.
#include "celementwise.h"
#include "cisa.h"
#include <math.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

INLINE uint32_t bits(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }
INLINE float from_bits(uint32_t u) { float v; memcpy(&v, &u, 4); return v; }

// Cephes expf (S. Moshier): n = round(x log2 e) by the 1.5 * 2^23 magic constant, r = x - n ln2 with
// ln2 in two parts, exp(x) = 2^n p(r), p of degree 6. Inputs clamped to [-87.33654, 88]; below the
// range the result is exactly 0 (exp(-inf) = 0 for masked keys), NaN stays NaN. Same constants and
// operation order as FastMath.exp in Kernels.
INLINE float cephes_exp(float v) {
    const float lo = -87.33654f, hi = 88.0f, magic = 12582912.0f;
    float x = v < lo ? lo : v;
    x = v > hi ? hi : x;
    float m = x * 1.44269504f + magic;
    float fx = m - magic;
    float r = x - fx * 0.693359375f;
    r = r + fx * 2.12194440e-4f;
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    uint32_t n = bits(m) - 0x4B400000u;             // the magic's low mantissa bits hold n
    float e = y * from_bits((n + 127u) << 23);
    return v < lo ? 0.0f : e;
}

INLINE float round_bf16(float x) {
    uint32_t u = bits(x);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    uint32_t quiet_nan = (u | 0x00400000u) & 0xFFFF0000u;
    return from_bits((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

#define BUILD(ISA, ATTR)                                                                                       \
    ATTR static void exp_##ISA(const float *x, float *out, int64_t n) {                                        \
        for (int64_t i = 0; i < n; i++) out[i] = cephes_exp(x[i]);                                             \
    }                                                                                                          \
    ATTR static void swiglu_forward_##ISA(float *out, const float *gate, const float *up, int64_t n) {         \
        if (out == gate) { /* in place (generation): one pointer, so the loop vectorises without alias checks */ \
            for (int64_t i = 0; i < n; i++) { float g = out[i]; out[i] = (g / (1.0f + cephes_exp(-g))) * up[i]; } \
            return;                                                                                            \
        }                                                                                                      \
        for (int64_t i = 0; i < n; i++) { float g = gate[i]; out[i] = (g / (1.0f + cephes_exp(-g))) * up[i]; } \
    }                                                                                                          \
    ATTR static void swiglu_backward_##ISA(float *restrict gg, float *restrict gu, const float *d,             \
                                           const float *gate, const float *up, int64_t n) {                    \
        for (int64_t i = 0; i < n; i++) {                                                                      \
            float g = gate[i], dy = d[i];                                                                      \
            float s = 1.0f / (1.0f + cephes_exp(-g));                                                          \
            gg[i] = gg[i] + dy * up[i] * s * (1.0f + g * (1.0f - s));                                          \
            gu[i] = gu[i] + dy * g * s;                                                                        \
        }                                                                                                      \
    }                                                                                                          \
    ATTR static void adamw_##ISA(float *restrict p, float *restrict m, float *restrict v, const float *g,      \
                                 int64_t n, float decay, float omb1, float b2, float omb2, float bias2_sqrt,    \
                                 float eps, float step_size) {                                                  \
        for (int64_t i = 0; i < n; i++) {                                                                      \
            float gi = g[i];                                                                                   \
            float pi = p[i] * decay;                                                                           \
            float mi = m[i] + omb1 * (gi - m[i]);                                                              \
            float vi = v[i] * b2 + omb2 * gi * gi;                                                             \
            float denom = sqrtf(vi) / bias2_sqrt + eps;                                                        \
            p[i] = pi + -step_size * (mi / denom);                                                             \
            m[i] = mi; v[i] = vi;                                                                              \
        }                                                                                                      \
    }                                                                                                          \
    ATTR static void round_##ISA(const float *x, float *out, int64_t n) {                                      \
        if (out == x) { for (int64_t i = 0; i < n; i++) out[i] = round_bf16(out[i]); return; }                 \
        for (int64_t i = 0; i < n; i++) out[i] = round_bf16(x[i]);                                             \
    }                                                                                                          \
    ATTR static void round_bias_##ISA(float *x, const float *restrict bias, int64_t rows, int64_t channels) {  \
        for (int64_t r = 0; r < rows; r++) {                                                                   \
            float *restrict row = x + r * channels;                                                            \
            for (int64_t c = 0; c < channels; c++) row[c] = round_bf16(row[c] + bias[c]);                      \
        }                                                                                                      \
    }

BUILD(portable, )

#if defined(__x86_64__)
BUILD(avx512, __attribute__((target("avx512f,avx512bw,avx512vl"), min_vector_width(512))))
BUILD(avx2, __attribute__((target("avx2"), min_vector_width(256))))

#define DISPATCH(NAME, ...)                                                                                    \
    switch (qlora_elementwise_isa()) {                                                                         \
    case 2: NAME##_avx512(__VA_ARGS__); return;                                                                \
    case 1: NAME##_avx2(__VA_ARGS__); return;                                                                  \
    default: NAME##_portable(__VA_ARGS__); return;                                                             \
    }
#else
#define DISPATCH(NAME, ...) NAME##_portable(__VA_ARGS__)
#endif

// CISA's level, AVX512-BF16 not needed here.
int qlora_elementwise_isa(void) { int level = qlora_isa(); return level > 2 ? 2 : level; }

void qlora_exp(const float *x, float *out, int64_t count) { DISPATCH(exp, x, out, count) }

void qlora_swiglu_forward(float *out, const float *gate, const float *up, int64_t count) {
    DISPATCH(swiglu_forward, out, gate, up, count)
}

void qlora_swiglu_backward(float *grad_gate, float *grad_up, const float *grad_out, const float *gate,
                           const float *up, int64_t count) {
    DISPATCH(swiglu_backward, grad_gate, grad_up, grad_out, gate, up, count)
}

void qlora_adamw_step(float *p, float *m, float *v, const float *g, int64_t count, float decay,
                      float one_minus_beta1, float beta2, float one_minus_beta2, float bias2_sqrt,
                      float eps, float step_size) {
    DISPATCH(adamw, p, m, v, g, count, decay, one_minus_beta1, beta2, one_minus_beta2, bias2_sqrt, eps, step_size)
}

void qlora_round_bf16(const float *x, float *out, int64_t count) { DISPATCH(round, x, out, count) }

void qlora_round_bf16_bias(float *x, const float *bias, int64_t rows, int64_t channels) {
    DISPATCH(round_bias, x, bias, rows, channels)
}
