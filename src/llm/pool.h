/* llm/pool — a persistent thread pool for data-parallel kernels (the forward pass).
 *
 * pool_new starts n-1 worker threads once; the caller of pool_run is thread 0, so a pool
 * of n runs a job on n threads. A job is one function run by every thread at the same
 * time, fn(arg, ith, nth); inside it the threads meet at pool_barrier between phases and
 * share work through pool_chunk (a counter every thread draws from, reset at each
 * barrier). That makes a whole forward pass one dispatch with cheap barriers in between,
 * like a fork-join region.
 *
 * Waiting spins first (a barrier in a forward pass is usually crossed within a
 * microsecond), then spins with sched_yield between polls (when the machine has more
 * runnable threads than cores, the thread being waited for gets to run), then sleeps on a
 * futex (Linux) so idle workers cost nothing. Between jobs, workers keep polling for ~2 ms
 * so a token-by-token decode loop does not pay a wake-up per token.
 *
 * Determinism is the caller's business: the pool only decides *which* thread runs a chunk,
 * never how the chunk is computed, so a job whose chunks are fixed-size gives bit-identical
 * results at any thread count.
 *
 * Threads: pool_run, pool_free from one owner thread at a time; pool_barrier, pool_chunk
 * only from inside a job, by every thread of the job. */
#ifndef APIARY_LLM_POOL_H
#define APIARY_LLM_POOL_H

#define POOL_MAX_THREADS 256

typedef struct pool pool;

/* A job: run by every thread, ith in [0, nth). */
typedef void (*pool_fn)(void *arg, int ith, int nth);

/* Starts a pool of n_threads (1..POOL_MAX_THREADS; the caller counts as one). Returns 0,
 * ERR_INVAL or -errno; *out is owned (pool_free). */
int pool_new(int n_threads, pool **out);
/* Stops and joins the workers. NULL is a no-op. */
void pool_free(pool *p);
int pool_n_threads(const pool *p);

/* Runs fn on every thread of the pool (the caller is thread 0) and returns when all have
 * finished. Not reentrant. */
void pool_run(pool *p, pool_fn fn, void *arg);
/* Inside a job: waits until every thread has arrived, then resets the chunk counter. */
void pool_barrier(pool *p);
/* Inside a job: the next unclaimed chunk index of the current phase (0, 1, 2, ...). Every
 * index is returned to exactly one thread. */
int pool_chunk(pool *p);

#endif
