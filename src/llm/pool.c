/* llm/pool — persistent worker threads with spin-then-sleep barriers; see pool.h.
 *
 * Two generation counters drive everything. job_gen is bumped by pool_run to start a job;
 * workers wait for it to change. bar_gen is bumped by the last thread to reach a barrier;
 * the others wait for it to change. Waiting spins (pause) for a bounded time, then sleeps
 * on the counter with a futex. A waker only makes the wake syscall when someone sleeps:
 * the sleeper increments `sleepers` before re-checking the counter inside FUTEX_WAIT, the
 * waker stores the counter before reading `sleepers` (both seq_cst), so either the waker
 * sees the sleeper or the sleeper's FUTEX_WAIT sees the new value - no lost wake-ups. */
#include "llm/pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/err.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long a waiter spins before it sleeps. Barriers inside a job are short; between jobs
 * (decode: sampling + detokenizing between two evals) a little longer. */
#define BARRIER_SPIN_NS 200000ll
#define JOB_SPIN_NS 2000000ll
#define YIELD_AFTER_NS 20000ll

typedef struct worker {
  pool *p;
  int ith;
} worker;

struct pool {
  int n;                                /* threads, the caller included */
  pthread_t *th;                        /* [n-1] workers */
  worker *w;                            /* [n-1] their arguments */
  pool_fn fn;                           /* current job */
  void *arg;
  atomic_int quit;                      /* set by pool_free */
  alignas(64) _Atomic uint32_t job_gen; /* bumped to start a job */
  alignas(64) atomic_int bar_arrived;   /* threads at the current barrier */
  alignas(64) _Atomic uint32_t bar_gen; /* bumped when a barrier opens */
  alignas(64) atomic_int chunk;         /* next chunk of the current phase */
  alignas(64) atomic_int sleepers;      /* threads inside FUTEX_WAIT (or about to be) */
};

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void sleep_on(_Atomic uint32_t *w, uint32_t old) {
#ifdef __linux__
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
#else
  (void)w, (void)old;
  sched_yield();
#endif
}

static void wake_all(pool *p, _Atomic uint32_t *w) {
  if (atomic_load(&p->sleepers) == 0) return;
#ifdef __linux__
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
  (void)w;
#endif
}

/* Waits until *w != old: spin (pause) for a few microseconds, then keep spinning but
 * yield the CPU between polls until spin_ns (so an oversubscribed machine runs the thread
 * we wait for), then sleep. */
static void wait_change(pool *p, _Atomic uint32_t *w, uint32_t old, long long spin_ns) {
  for (int i = 0; i < 1024; i++) {
    if (atomic_load_explicit(w, memory_order_acquire) != old) return;
    cpu_relax();
  }
  long long t0 = now_ns();
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(w, memory_order_acquire) != old) return;
      cpu_relax();
    }
    long long dt = now_ns() - t0;
    if (dt > spin_ns) break;
    if (dt > YIELD_AFTER_NS) sched_yield();
  }
  atomic_fetch_add(&p->sleepers, 1);
  while (atomic_load(w) == old) sleep_on(w, old);
  atomic_fetch_sub(&p->sleepers, 1);
}

void pool_barrier(pool *p) {
  if (p->n == 1) {
    atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
    return;
  }
  uint32_t gen = atomic_load_explicit(&p->bar_gen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&p->bar_arrived, 1, memory_order_acq_rel) == p->n - 1) {
    atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->bar_arrived, 0, memory_order_relaxed);
    atomic_store(&p->bar_gen, gen + 1); /* seq_cst: pairs with the sleeper protocol */
    wake_all(p, &p->bar_gen);
  } else {
    wait_change(p, &p->bar_gen, gen, BARRIER_SPIN_NS);
  }
}

int pool_chunk(pool *p) { return atomic_fetch_add_explicit(&p->chunk, 1, memory_order_relaxed); }

int pool_n_threads(const pool *p) { return p->n; }

static void *worker_main(void *arg) {
  worker *w = arg;
  pool *p = w->p;
  uint32_t seen = 0;
  for (;;) {
    wait_change(p, &p->job_gen, seen, JOB_SPIN_NS);
    seen = atomic_load_explicit(&p->job_gen, memory_order_acquire);
    if (atomic_load(&p->quit)) break;
    p->fn(p->arg, w->ith, p->n);
    pool_barrier(p);
  }
  return NULL;
}

void pool_run(pool *p, pool_fn fn, void *arg) {
  p->fn = fn;
  p->arg = arg;
  atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
  if (p->n > 1) {
    atomic_fetch_add(&p->job_gen, 1); /* seq_cst: publishes fn/arg, pairs with sleepers */
    wake_all(p, &p->job_gen);
  }
  fn(arg, 0, p->n);
  pool_barrier(p);
}

int pool_new(int n_threads, pool **out) {
  *out = NULL;
  if (n_threads < 1 || n_threads > POOL_MAX_THREADS) return ERR_INVAL;
  pool *p = calloc(1, sizeof *p);
  if (!p) return ERR_NOMEM;
  p->n = 1;
  if (n_threads > 1) {
    p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
    p->w = calloc((size_t)n_threads - 1, sizeof *p->w);
    if (!p->th || !p->w) {
      pool_free(p);
      return ERR_NOMEM;
    }
  }
  for (int i = 1; i < n_threads; i++) {
    p->w[i - 1] = (worker){p, i};
    int rc = pthread_create(&p->th[i - 1], NULL, worker_main, &p->w[i - 1]);
    if (rc) {
      pool_free(p); /* joins the ones already started */
      return -rc;
    }
    p->n = i + 1;
  }
  *out = p;
  return 0;
}

void pool_free(pool *p) {
  if (!p) return;
  if (p->n > 1) {
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->job_gen, 1);
    wake_all(p, &p->job_gen);
    for (int i = 0; i < p->n - 1; i++) pthread_join(p->th[i], NULL);
  }
  free(p->th);
  free(p->w);
  free(p);
}
