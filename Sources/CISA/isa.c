// CPU detection for the C kernels (see cisa.h).
#include "cisa.h"
#include <stdlib.h>

#if defined(__x86_64__)
int qlora_isa(void) {
    static int isa = -1;   // a benign race: every thread computes the same value
    if (isa < 0) {
        __builtin_cpu_init();
        int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
        int level = avx512 && __builtin_cpu_supports("avx512bf16") ? 3 : avx512 ? 2
            : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
        const char *cap = getenv("QLORA_NF4_ISA");
        if (cap && cap[0] >= '0' && cap[0] <= '3' && cap[0] - '0' < level) level = cap[0] - '0';
        isa = level;
    }
    return isa;
}
#else
int qlora_isa(void) { return 0; }
#endif
