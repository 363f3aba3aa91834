#ifndef QLORA_CISA_H
#define QLORA_CISA_H

// The instruction set the C kernels (CNF4, CElementwise) build for, detected once for all of them:
// 3 AVX-512 (F, BW, VL) with AVX512-BF16, 2 AVX-512 (F, BW, VL), 1 AVX2 + FMA, 0 portable C.
// QLORA_NF4_ISA=0|1|2 caps it, so one machine runs (and CI tests) every lesser build.
int qlora_isa(void);
#endif
