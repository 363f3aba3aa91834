// Helper-thread pool (see cparallel.h).
//
// One job at a time. `claim` packs the job's generation (high 32 bits) with the next chunk index
// (low 32 bits), so a helper takes a chunk with one compare-and-swap that also proves the job it
// read is still the current one: a helper that wakes late, after the job ended and the next began,
// sees another generation and takes nothing. A new job first closes the claim word (its generation
// with the index CLOSED, an atomic exchange), then writes its function, context and size, then opens
// it (index 0). So no claim on the last job can succeed once its fields change — a helper that read
// the old word and the new size would otherwise run one chunk too many — and a successful claim
// always pairs with the fields of its own job, which stay unchanged until every chunk is done.
#define _GNU_SOURCE
#include "cparallel.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// How long an idle helper spins before it sleeps: longer than the serial gaps between the kernels
// of a step, short enough that an idle process stops using the cores at once.
#define SPIN_NANOSECONDS 200000
#define CLOSED 0xFFFFFFFFu           // chunk index of a job being set up: nothing to claim yet

static struct {
    _Atomic uint64_t claim;          // generation << 32 | next chunk
    _Atomic int64_t done;            // chunks finished in the current job
    _Atomic(qlora_chunk_function) function;
    _Atomic(void *) context;
    _Atomic int64_t chunks;
    _Atomic int busy;                // a job is running (others run serially on their own thread)
    _Atomic int sleepers;            // helpers waiting on `wake`
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int helpers;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static _Atomic int publish_delay;    // test hook (qlora_pool_set_publish_delay)
static pthread_once_t started = PTHREAD_ONCE_INIT;
static int requested_helpers;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claims and runs chunks of generation `generation` until none is left (or the job is gone).
static void run_chunks(uint32_t generation) {
    uint64_t word = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(word >> 32) != generation) return;
        int64_t chunks = atomic_load_explicit(&pool.chunks, memory_order_relaxed);
        int64_t chunk = (int64_t)(uint32_t)word;
        if (chunk >= chunks) return;
        qlora_chunk_function function = atomic_load_explicit(&pool.function, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&pool.claim, &word, word + 1, memory_order_acq_rel, memory_order_acquire)) {
            function(context, chunk);
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
            word = atomic_load_explicit(&pool.claim, memory_order_acquire);
        }
        // On failure `word` holds the current value: retry with it.
    }
}

static void *helper_main(void *unused) {
    (void)unused;
    uint32_t seen = 0;
    for (;;) {
        uint32_t generation;
        uint64_t spin_start = 0;
        unsigned spins = 0;
        uint64_t word;
        while ((generation = (uint32_t)((word = atomic_load_explicit(&pool.claim, memory_order_acquire)) >> 32)) == seen
               || (uint32_t)word == CLOSED) {
            if ((uint32_t)word == CLOSED && generation != seen) { CPU_RELAX(); continue; }   // opens in a moment
            CPU_RELAX();
            if ((++spins & 255) != 0) continue;
            uint64_t t = now_ns();
            if (spin_start == 0) { spin_start = t; continue; }
            if (t - spin_start < SPIN_NANOSECONDS) {
                // Past the first tenth, offer the core to any other runnable thread (another process's
                // training on a shared machine); with none waiting this returns at once.
                if (t - spin_start > SPIN_NANOSECONDS / 10) sched_yield();
                continue;
            }
            // Sleep. sleepers is raised before the generation is read again (both sequentially
            // consistent), so a job published meanwhile is either seen here or sees a sleeper.
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((uint32_t)(atomic_load(&pool.claim) >> 32) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
            spin_start = 0;
        }
        seen = generation;
        run_chunks(generation);
    }
    return 0;
}

static void start_helpers(void) {
    int started_count = 0;
    for (int i = 0; i < requested_helpers; i++) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, helper_main, 0) == 0) started_count++;
        pthread_attr_destroy(&attributes);
    }
    pool.helpers = started_count;   // a thread that could not start is one fewer helper, not an error
}

int qlora_pool_start(int helpers) {
    requested_helpers = helpers < 0 ? 0 : helpers;
    pthread_once(&started, start_helpers);
    return pool.helpers;
}

void qlora_pool_run(int64_t chunks, qlora_chunk_function function, void *context) {
    if (chunks <= 0) return;
    int expected = 0;
    if (chunks == 1 || pool.helpers == 0 || chunks >= CLOSED
        || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        for (int64_t c = 0; c < chunks; c++) function(context, c);
        return;
    }
    uint32_t generation = (uint32_t)(atomic_load_explicit(&pool.claim, memory_order_relaxed) >> 32) + 1;
    // Close: a sequentially consistent exchange, so the writes below cannot move before it and every
    // claim on the last job either happened before it or fails.
    atomic_exchange(&pool.claim, ((uint64_t)generation << 32) | CLOSED);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.function, function, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.chunks, chunks, memory_order_relaxed);
    for (int d = atomic_load_explicit(&publish_delay, memory_order_relaxed); d > 0; d--) CPU_RELAX();
    atomic_store(&pool.claim, (uint64_t)generation << 32);   // open: publishes the job (sequentially consistent)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_chunks(generation);
    // The helpers' last chunks. If that takes long (a helper was preempted: more threads than
    // cores), yield the core to it instead of spinning against it.
    uint64_t wait_start = 0;
    for (unsigned spins = 1; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; spins++) {
        CPU_RELAX();
        if ((spins & 255) != 0) continue;
        uint64_t t = now_ns();
        if (wait_start == 0) wait_start = t;
        else if (t - wait_start > SPIN_NANOSECONDS) sched_yield();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}

void qlora_pool_set_publish_delay(int spins) { atomic_store_explicit(&publish_delay, spins, memory_order_relaxed); }
