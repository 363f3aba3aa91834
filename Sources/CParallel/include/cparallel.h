#ifndef QLORA_CPARALLEL_H
#define QLORA_CPARALLEL_H
#include <stdint.h>

// A fixed pool of helper threads for Kernels' Parallel: the caller and the helpers claim chunk
// indices of one job from a shared counter. Between jobs a helper spins briefly before it sleeps,
// so the next job (a training step runs thousands, tens of microseconds apart) starts without a
// futex wake-up and a context switch on each side — 9% of a bf16 SmolLM2 step's samples were the
// kernel waking and switching Dispatch's workers.
//
// Which thread runs a chunk never changes what it computes: chunk c is the same range of work
// whoever claims it, so results depend only on the chunk count, as with DispatchQueue.concurrentPerform.

typedef void (*qlora_chunk_function)(void *context, int64_t chunk);

/// Starts `helpers` threads the first time (later calls keep the first count); 0 leaves every job
/// on the calling thread. Returns the helper count in use.
int qlora_pool_start(int helpers);

/// Runs function(context, c) for every c in [0, chunks) and returns when all have finished, on the
/// calling thread and the helpers. A call made while another job runs (a chunk that parallelises
/// again, or a second thread) runs its chunks on its own thread, in order.
void qlora_pool_run(int64_t chunks, qlora_chunk_function function, void *context);

/// Tests: pause this many spins between setting up a job and publishing it, the window in which a
/// helper still in the last job must not claim anything (0, the default, for everything else).
void qlora_pool_set_publish_delay(int spins);
#endif
