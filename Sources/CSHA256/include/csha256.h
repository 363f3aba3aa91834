// SHA-256 compression with the x86 SHA extensions (SHA-NI), detected at run time.
// The portable implementation lives in PipelineCore/SHA256.swift and is the fallback and test oracle.
#ifndef QLORA_CSHA256_H
#define QLORA_CSHA256_H
#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has SHA-NI (and the SSSE3/SSE4.1 it relies on), else 0.
int qlora_sha256_hardware_available(void);

/// Compresses `blocks` 64-byte blocks of `data` into `state` (a..h, FIPS 180-4 §6.2.2).
/// Call only when qlora_sha256_hardware_available() returned 1.
void qlora_sha256_compress_hardware(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
