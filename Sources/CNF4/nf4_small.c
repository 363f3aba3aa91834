// Fused 4-bit products for few rows (see cnf4.h). Three builds of the same two loops — decode a run
// of codes into fp32, then dot products (forward) or axpys (backward) over it — for AVX-512,
// AVX2 + FMA and portable C, chosen once at run time, and a bf16-compute forward with AVX512-BF16
// dot products. The decoded values are bit-identical on every path (one fp32 multiply
// table[code] * absmax, the same bf16 rounding); the sums' order differs.
#include "cnf4.h"
#include "cisa.h"
#include <string.h>

static inline float round_bf16(float v) {
    uint32_t u; memcpy(&u, &v, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;   // finite inputs only (table * absmax)
    memcpy(&v, &u, 4); return v;
}

// ---- portable ----
static void decode_portable(const uint8_t *packed, const float *absmax, const float *table, int bs,
                            int64_t e0, int count, int round, float *out) {
    float tv[16];
    for (int blk = 0; blk < count / bs; blk++) {
        int64_t e = e0 + (int64_t)blk * bs;
        float am = absmax[e / bs];
        for (int c = 0; c < 16; c++) tv[c] = round ? round_bf16(table[c] * am) : table[c] * am;
        const uint8_t *src = packed + e / 2;
        float *o = out + blk * bs;
        for (int k = 0; k < bs / 2; k++) { o[2 * k] = tv[src[k] >> 4]; o[2 * k + 1] = tv[src[k] & 15]; }
    }
}

static float dot_portable(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_portable(float g, const float *w, float *d, int n) {
    for (int i = 0; i < n; i++) d[i] += g * w[i];
}

// The two loops over decoded rows, the same for every instruction set: forward decodes weight row o
// and takes the M dot products with it; backward decodes the slice [i0, i1) of every row and adds
// dy[n, o] times it to each dx row. ATTR compiles them (and the inlined helpers) for that set.
#define ROW_KERNELS(ISA, ATTR)                                                                              \
    ATTR static void forward_##ISA(const uint8_t *p, const float *am, const float *t, int bs, int I, int O,   \
                                   int o0, int o1, const float *x, int M, float *y, int round, float *w) {    \
        for (int o = o0; o < o1; o++) {                                                                     \
            decode_##ISA(p, am, t, bs, (int64_t)o * I, I, round, w);                                        \
            for (int n = 0; n < M; n++) y[(int64_t)n * O + o] = dot_##ISA(x + (int64_t)n * I, w, I);          \
        }                                                                                                   \
    }                                                                                                       \
    ATTR static void backward_##ISA(const uint8_t *p, const float *am, const float *t, int bs, int I, int O,  \
                                    int i0, int i1, const float *dy, int M, float *dx, int round, float *w) { \
        int L = i1 - i0;                                                                                    \
        for (int o = 0; o < O; o++) {                                                                       \
            decode_##ISA(p, am, t, bs, (int64_t)o * I + i0, L, round, w);                                   \
            for (int n = 0; n < M; n++) axpy_##ISA(dy[(int64_t)n * O + o], w, dx + (int64_t)n * I + i0, L);   \
        }                                                                                                   \
    }

ROW_KERNELS(portable, )

#if defined(__x86_64__)
#include <immintrin.h>

// ---- AVX-512: 16 codes -> 16 floats with one vpermps from the block's 16 values ----
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void decode_avx512(const uint8_t *packed, const float *absmax, const float *table, int bs,
                          int64_t e0, int count, int round, float *out) {
    const __m512 tab = _mm512_loadu_ps(table);
    const __m128i low4 = _mm_set1_epi16(15);
    for (int blk = 0; blk < count / bs; blk++) {
        int64_t e = e0 + (int64_t)blk * bs;
        __m512 tv = _mm512_mul_ps(tab, _mm512_set1_ps(absmax[e / bs]));
        if (round) {
            __m512i u = _mm512_castps_si512(tv);
            __m512i r = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
            tv = _mm512_castsi512_ps(_mm512_and_si512(_mm512_add_epi32(u, r), _mm512_set1_epi32((int)0xFFFF0000u)));
        }
        const uint8_t *src = packed + e / 2;
        float *o = out + blk * bs;
        for (int k = 0; k < bs / 16; k++) {
            __m128i w16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(src + 8 * k)));   // 8 bytes -> 8 x u16
            __m128i pairs = _mm_or_si128(_mm_srli_epi16(w16, 4), _mm_slli_epi16(_mm_and_si128(w16, low4), 8));   // hi, lo, hi, lo...
            _mm512_storeu_ps(o + 16 * k, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(pairs), tv));
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
static float dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
static void axpy_avx512(float g, const float *w, float *d, int n) {
    __m512 gv = _mm512_set1_ps(g);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_fmadd_ps(gv, _mm512_loadu_ps(w + i), _mm512_loadu_ps(d + i)));
    for (; i < n; i++) d[i] += g * w[i];
}

ROW_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl"))))

// ---- AVX512-BF16 (bf16 compute only): operands as bf16, products by vdpbf16ps ----
// Under bnb_4bit_compute_dtype=bfloat16 the decoded weights and the layer input are bf16 values
// (the caller rounds the input), so each product of two of them is exact in fp32 and vdpbf16ps,
// which multiplies 32 bf16 pairs and adds them to 16 fp32 lanes per instruction (Intel SDM, VDPBF16PS:
// round to nearest even, denormal inputs and outputs flushed to zero), gives the fp32 sum of the same
// exact products as the emulation, in another order. Weights decode to 16-bit values (vpermw from the
// block's 16 rounded values), half the bytes of the fp32 path.
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

BF16_TARGET static inline uint16_t bf16_bits(float v) {   // v already a bf16 value: its top half
    uint32_t u; memcpy(&u, &v, 4); return (uint16_t)(u >> 16);
}

BF16_TARGET static void decode_bf16(const uint8_t *packed, const float *absmax, const float *table, int bs,
                                    int64_t e0, int count, uint16_t *out) {
    const __m512 tab = _mm512_loadu_ps(table);
    const __m256i low4 = _mm256_set1_epi16(15);
    for (int blk = 0; blk < count / bs; blk++) {
        int64_t e = e0 + (int64_t)blk * bs;
        __m512 tv = _mm512_mul_ps(tab, _mm512_set1_ps(absmax[e / bs]));
        __m512i u = _mm512_castps_si512(tv);   // round to nearest even, keep the top 16 bits
        __m512i r = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
        __m256i t16 = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_add_epi32(u, r), 16));   // 16 x bf16
        __m512i tab16 = _mm512_inserti64x4(_mm512_castsi256_si512(t16), t16, 1);
        const uint8_t *src = packed + e / 2;
        uint16_t *o = out + blk * bs;
        for (int k = 0; k < bs / 32; k++) {   // 16 bytes -> 32 codes -> 32 bf16 (blocks: powers of two >= 32)
            __m256i w16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + 16 * k)));
            __m256i pairs = _mm256_or_si256(_mm256_srli_epi16(w16, 4), _mm256_slli_epi16(_mm256_and_si256(w16, low4), 8));
            _mm512_storeu_si512(o + 32 * k, _mm512_permutexvar_epi16(_mm512_cvtepu8_epi16(pairs), tab16));
        }
    }
}

BF16_TARGET static float dot_bf16(const uint16_t *a, const uint16_t *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i), (__m512bh)_mm512_loadu_si512(b + i));
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + i + 32), (__m512bh)_mm512_loadu_si512(b + i + 32));
    }
    for (; i + 32 <= n; i += 32) s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i), (__m512bh)_mm512_loadu_si512(b + i));
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) {   // the exact products of the tail
        uint32_t x = (uint32_t)a[i] << 16, y = (uint32_t)b[i] << 16;
        float fx, fy; memcpy(&fx, &x, 4); memcpy(&fy, &y, 4);
        s += fx * fy;
    }
    return s;
}

// x (M, I) bf16 values -> xb (M, I) bf16 bits, then per weight row: decode, M dot products.
// scratch: I floats for the decoded row (as I 16-bit values) + M·I/2 floats for xb.
BF16_TARGET static void forward_bf16(const uint8_t *p, const float *am, const float *t, int bs, int I, int O,
                                     int o0, int o1, const float *x, int M, float *y, float *scratch) {
    uint16_t *w = (uint16_t *)scratch, *xb = (uint16_t *)(scratch + I);
    for (int64_t k = 0; k < (int64_t)M * I; k++) xb[k] = bf16_bits(x[k]);
    for (int o = o0; o < o1; o++) {
        decode_bf16(p, am, t, bs, (int64_t)o * I, I, w);
        for (int n = 0; n < M; n++) y[(int64_t)n * O + o] = dot_bf16(xb + (int64_t)n * I, w, I);
    }
}

// ---- AVX2 + FMA: 8 codes -> 8 floats with two vpermps (values 0-7 and 8-15) and a blend ----
__attribute__((target("avx2,fma")))
static void decode_avx2(const uint8_t *packed, const float *absmax, const float *table, int bs,
                        int64_t e0, int count, int round, float *out) {
    const __m256 tab0 = _mm256_loadu_ps(table), tab1 = _mm256_loadu_ps(table + 8);
    const __m128i low4 = _mm_set1_epi16(15);
    const __m256i seven = _mm256_set1_epi32(7);
    for (int blk = 0; blk < count / bs; blk++) {
        int64_t e = e0 + (int64_t)blk * bs;
        __m256 a = _mm256_set1_ps(absmax[e / bs]);
        __m256 lo = _mm256_mul_ps(tab0, a), hi = _mm256_mul_ps(tab1, a);
        if (round) {
            const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), mask = _mm256_set1_epi32((int)0xFFFF0000u);
            __m256i u = _mm256_castps_si256(lo), v = _mm256_castps_si256(hi);
            u = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one))), mask);
            v = _mm256_and_si256(_mm256_add_epi32(v, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(v, 16), one))), mask);
            lo = _mm256_castsi256_ps(u); hi = _mm256_castsi256_ps(v);
        }
        const uint8_t *src = packed + e / 2;
        float *o = out + blk * bs;
        for (int k = 0; k < bs / 16; k++) {
            __m128i w16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(src + 8 * k)));
            __m128i pairs = _mm_or_si128(_mm_srli_epi16(w16, 4), _mm_slli_epi16(_mm_and_si128(w16, low4), 8));
            __m256i i0 = _mm256_cvtepu8_epi32(pairs), i1 = _mm256_cvtepu8_epi32(_mm_srli_si128(pairs, 8));
            __m256 w0 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i0), _mm256_permutevar8x32_ps(hi, i0), _mm256_castsi256_ps(_mm256_cmpgt_epi32(i0, seven)));
            __m256 w1 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i1), _mm256_permutevar8x32_ps(hi, i1), _mm256_castsi256_ps(_mm256_cmpgt_epi32(i1, seven)));
            _mm256_storeu_ps(o + 16 * k, w0);
            _mm256_storeu_ps(o + 16 * k + 8, w1);
        }
    }
}

__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

__attribute__((target("avx2,fma")))
static void axpy_avx2(float g, const float *w, float *d, int n) {
    __m256 gv = _mm256_set1_ps(g);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_fmadd_ps(gv, _mm256_loadu_ps(w + i), _mm256_loadu_ps(d + i)));
    for (; i < n; i++) d[i] += g * w[i];
}

ROW_KERNELS(avx2, __attribute__((target("avx2,fma"))))
#endif

int qlora_nf4_isa(void) { return qlora_isa(); }

void qlora_nf4_forward(const uint8_t *packed, const float *absmax, const float *table, int bs, int I, int O, int o0, int o1,
                       const float *x, int M, float *y, int round, float *scratch) {
#if defined(__x86_64__)
    switch (qlora_nf4_isa()) {
    case 3:
        if (round) { forward_bf16(packed, absmax, table, bs, I, O, o0, o1, x, M, y, scratch); return; }
        forward_avx512(packed, absmax, table, bs, I, O, o0, o1, x, M, y, round, scratch); return;
    case 2: forward_avx512(packed, absmax, table, bs, I, O, o0, o1, x, M, y, round, scratch); return;
    case 1: forward_avx2(packed, absmax, table, bs, I, O, o0, o1, x, M, y, round, scratch); return;
    default: break;
    }
#endif
    forward_portable(packed, absmax, table, bs, I, O, o0, o1, x, M, y, round, scratch);
}

void qlora_nf4_backward(const uint8_t *packed, const float *absmax, const float *table, int bs, int I, int O, int i0, int i1,
                        const float *dy, int M, float *dx, int round, float *scratch) {
#if defined(__x86_64__)
    switch (qlora_nf4_isa()) {
    case 3: case 2: backward_avx512(packed, absmax, table, bs, I, O, i0, i1, dy, M, dx, round, scratch); return;
    case 1: backward_avx2(packed, absmax, table, bs, I, O, i0, i1, dy, M, dx, round, scratch); return;
    default: break;
    }
#endif
    backward_portable(packed, absmax, table, bs, I, O, i0, i1, dy, M, dx, round, scratch);
}

void qlora_nf4_dequantize(const uint8_t *packed, const float *absmax, const float *table, int bs,
                          int64_t e0, int64_t count, int round, float *out) {
    // Whole blocks only (the header's contract); chunks of at most INT32_MAX / 2 elements for the int counts.
    const int64_t step = (int64_t)(0x3FFFFFFF / bs) * bs;
    for (int64_t done = 0; done < count; done += step) {
        int n = (int)(count - done < step ? count - done : step);
#if defined(__x86_64__)
        switch (qlora_nf4_isa()) {
        case 3: case 2: decode_avx512(packed, absmax, table, bs, e0 + done, n, round, out + done); continue;
        case 1: decode_avx2(packed, absmax, table, bs, e0 + done, n, round, out + done); continue;
        default: break;
        }
#endif
        decode_portable(packed, absmax, table, bs, e0 + done, n, round, out + done);
    }
}
