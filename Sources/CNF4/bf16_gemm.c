// bf16 matrix products with AVX512-BF16 (see cnf4.h): the tiled path of bf16 compute
// (bnb_4bit_compute_dtype=bfloat16) for micro-batches too large for the fused row kernels.
//
// Legend: C (M, N) = A (M, K) · B, with B given as (N, K) ("nt", the forward y = x · Wᵀ) or as
// (K, N) ("nn", the input gradient dx = dy · W). A and B hold bf16 values in fp32 storage (the caller
// rounded them), so converting them to bf16 bits is exact, every product of two of them is exact in
// fp32, and vdpbf16ps — two such products added to each of 16 fp32 lanes per instruction, round to
// nearest even, denormals flushed to zero (Intel SDM, VDPBF16PS) — gives the fp32 sum of the same exact
// products as fp32 sgemm over the rounded values, in another order.
//
// Blocking (BLIS-style, one level): A is packed once into bf16 rows padded to MR rows and an even K;
// each 32-column panel of B is packed into k-pair-interleaved bf16 (for pair p and column j:
// B[2p][j], B[2p+1][j]), so one 64-byte load holds 32 columns × 2 k. The 8 × 32 microkernel keeps 16
// accumulators in registers and, per k-pair, issues 2 panel loads, 8 broadcasts of A pairs and 16
// vdpbf16ps. A panel (32 × K × 2 bytes: 96 KB at K = 1536) stays in L2 while all rows of A pass by.
#include "cnf4.h"
#include <string.h>

#define MR 8
#define NR 32

int64_t qlora_bf16_packed_rows_size(int rows, int depth) {
    return (int64_t)((rows + MR - 1) / MR * MR) * ((depth + 1) / 2 * 2);
}

int64_t qlora_bf16_panel_size(int depth) { return (int64_t)NR * ((depth + 1) / 2 * 2); }

static inline uint16_t top_half(float v) { uint32_t u; memcpy(&u, &v, 4); return (uint16_t)(u >> 16); }

#if defined(__x86_64__)
#include <immintrin.h>
#define BF16_GEMM_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

static inline uint32_t bits(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }

// The top halves of bf16 values are their bits: 32 values per step, shifted and narrowed.
BF16_GEMM_TARGET void qlora_bf16_pack_rows(const float *a, int lda, int rows, int depth, uint16_t *out) {
    const int Kp = (depth + 1) / 2 * 2, Mp = (rows + MR - 1) / MR * MR;
    for (int m = 0; m < Mp; m++) {
        uint16_t *o = out + (int64_t)m * Kp;
        if (m >= rows) { memset(o, 0, sizeof(uint16_t) * Kp); continue; }
        const float *r = a + (int64_t)m * lda;
        int k = 0;
        for (; k + 16 <= depth; k += 16)
            _mm256_storeu_si256((__m256i *)(o + k), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(r + k)), 16)));
        for (; k < depth; k++) o[k] = top_half(r[k]);
        if (Kp > depth) o[depth] = 0;
    }
}

// Panel of columns [n0, n0 + NR) of B (zero beyond N and beyond K), pair-interleaved: out[p][j] holds
// B[2p][j] in its low and B[2p+1][j] in its high 16 bits. The values are bf16 already, so their top
// halves are their bf16 bits (no rounding here).
BF16_GEMM_TARGET static void pack_panel(const float *b, int ldb, int transposed, int N, int K, int n0, uint32_t *out) {
    const int pairs = (K + 1) / 2, cols = N - n0 < NR ? N - n0 : NR;
    if (!transposed) {   // B (K, N): rows 2p and 2p + 1 side by side, 32 columns at a time
        for (int p = 0; p < pairs; p++) {
            const float *r0 = b + (int64_t)(2 * p) * ldb + n0, *r1 = r0 + ldb;
            uint32_t *o = out + (int64_t)p * NR;
            int hasSecond = 2 * p + 1 < K;
            for (int j = 0; j < cols; j++) o[j] = (hasSecond ? bits(r1[j]) & 0xFFFF0000u : 0) | (bits(r0[j]) >> 16);
            for (int j = cols; j < NR; j++) o[j] = 0;
        }
        return;
    }
    // B (N, K): row n's pairs are adjacent in memory; the panel is their transpose.
    for (int j = 0; j < NR; j++) {
        if (j >= cols) { for (int p = 0; p < pairs; p++) out[(int64_t)p * NR + j] = 0; continue; }
        const float *r = b + (int64_t)(n0 + j) * ldb;
        int p = 0;
        for (; 2 * p + 1 < K; p++) out[(int64_t)p * NR + j] = (bits(r[2 * p + 1]) & 0xFFFF0000u) | (bits(r[2 * p]) >> 16);
        if (p < pairs) out[(int64_t)p * NR + j] = bits(r[2 * p]) >> 16;
    }
}

// C[0..<mr, 0..<nr] (ldc) = (accumulate ? C : 0) + A rows (MR, Kp) · panel (Kp/2, NR, 2).
BF16_GEMM_TARGET static void micro_8x32(const uint16_t *a, int Kp, const uint16_t *panel, float *c, int ldc,
                                        int mr, int nr, int accumulate) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    const int pairs = Kp / 2;
    for (int p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + (int64_t)p * 2 * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + (int64_t)p * 2 * NR + 32);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            int32_t pair; memcpy(&pair, a + (int64_t)i * Kp + 2 * p, 4);
            __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *row = c + (int64_t)i * ldc;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

BF16_GEMM_TARGET void qlora_bf16_gemm(const uint16_t *a_packed, int M, int K, const float *b, int ldb, int b_transposed,
                                      int n0, int n1, float *c, int ldc, int accumulate, uint16_t *panel) {
    const int Kp = (K + 1) / 2 * 2;
    for (int j0 = n0; j0 < n1; j0 += NR) {
        int nr = n1 - j0 < NR ? n1 - j0 : NR;
        pack_panel(b, ldb, b_transposed, n1, K, j0, (uint32_t *)panel);   // columns from n1 on are zero
        for (int i0 = 0; i0 < M; i0 += MR) {
            int mr = M - i0 < MR ? M - i0 : MR;
            micro_8x32(a_packed + (int64_t)i0 * Kp, Kp, panel, c + (int64_t)i0 * ldc + j0, ldc, mr, nr, accumulate);
        }
    }
}

int qlora_bf16_gemm_available(void) { return qlora_nf4_isa() >= 3; }
#else
void qlora_bf16_gemm(const uint16_t *a_packed, int M, int K, const float *b, int ldb, int b_transposed,
                     int n0, int n1, float *c, int ldc, int accumulate, uint16_t *panel) {
    (void)a_packed; (void)M; (void)K; (void)b; (void)ldb; (void)b_transposed; (void)n0; (void)n1;
    (void)c; (void)ldc; (void)accumulate; (void)panel;
}
void qlora_bf16_pack_rows(const float *a, int lda, int rows, int depth, uint16_t *out) {
    (void)a; (void)lda; (void)rows; (void)depth; (void)out;
}
int qlora_bf16_gemm_available(void) { return 0; }
#endif
