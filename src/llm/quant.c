/* llm/quant — type traits, fp16/bf16 conversion and the kernel dispatch.
 *
 * The traits table is static data indexed by ggml type id. Kernel tables (one per ISA this
 * build and CPU can run) are filled once under pthread_once by quant_init; the active one
 * is an atomic pointer, so every public entry point is thread-safe after (or during) the
 * first quant_init. quant_force_isa swaps the pointer (tests/bench only).
 *
 * The public wrappers check arguments that are cheap to check (whole blocks, supported
 * type) with asserts: calling them otherwise is a bug in the caller, which must check
 * quant_row_ok / traits->supported first. */
#include "llm/quant.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "core/err.h"
#include "llm/quant_impl.h"

static const quant_traits traits[QT_COUNT] = {
    [QT_F32] = {"F32", 1, 4, QT_F32, 1},
    [QT_F16] = {"F16", 1, 2, QT_F16, 1},
    [QT_Q4_0] = {"Q4_0", QK4_0, sizeof(quant__q4_0), QT_Q8_0, 1},
    [QT_Q4_1] = {"Q4_1", QK4_1, sizeof(quant__q4_1), QT_Q8_0, 1},
    [QT_Q5_0] = {"Q5_0", QK5_0, sizeof(quant__q5_0), QT_Q8_0, 1},
    [QT_Q5_1] = {"Q5_1", QK5_1, sizeof(quant__q5_1), QT_Q8_0, 1},
    [QT_Q8_0] = {"Q8_0", QK8_0, sizeof(quant__q8_0), QT_Q8_0, 1},
    [QT_Q8_1] = {"Q8_1", QK8_1, sizeof(quant__q8_1), QT_Q8_0, 1},
    [QT_Q2_K] = {"Q2_K", QK_K, sizeof(quant__q2_k), QT_Q8_K, 0},
    [QT_Q3_K] = {"Q3_K", QK_K, sizeof(quant__q3_k), QT_Q8_K, 0},
    [QT_Q4_K] = {"Q4_K", QK_K, sizeof(quant__q4_k), QT_Q8_K, 1},
    [QT_Q5_K] = {"Q5_K", QK_K, sizeof(quant__q5_k), QT_Q8_K, 1},
    [QT_Q6_K] = {"Q6_K", QK_K, sizeof(quant__q6_k), QT_Q8_K, 1},
    [QT_Q8_K] = {"Q8_K", QK_K, sizeof(quant__q8_k), QT_Q8_K, 1},
    [QT_BF16] = {"BF16", 1, 2, QT_BF16, 1},
};

const quant_traits *quant_traits_of(uint32_t type) {
  if (type >= QT_COUNT || !traits[type].name) return NULL;
  return &traits[type];
}

const char *quant_name(uint32_t type) {
  const quant_traits *t = quant_traits_of(type);
  return t ? t->name : "unknown";
}

int quant_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < QT_COUNT; i++) {
    const char *a = traits[i].name, *b = name;
    if (!a) continue;
    while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
    if (!*a && !*b) return i;
  }
  return -1;
}

int quant_row_ok(qtype t, int64_t n) {
  const quant_traits *tr = quant_traits_of((uint32_t)t);
  return tr && n >= 0 && n % tr->block_size == 0;
}

size_t quant_row_size(qtype t, int64_t n) {
  const quant_traits *tr = quant_traits_of((uint32_t)t);
  if (!tr || n < 0) return 0;
  return (size_t)(n / tr->block_size) * tr->type_size;
}

/* ---- fp16 / bf16 ---------------------------------------------------------------------- */

static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float quant_f16_to_f32(uint16_t h) { return quant__f16_to_f32(h); }

uint16_t quant_f32_to_f16(float f) {
  uint32_t x = f2u(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) /* inf stays inf; nan becomes a quiet nan keeping its top payload */
    return ax == 0x7f800000 ? sign | 0x7c00 : (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
  if (ax >= 0x477ff000) return sign | 0x7c00;  /* >= 65520 rounds (ties-to-even) to inf */
  if (ax >= 0x38800000) {                      /* normal half: >= 2^-14 */
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1); /* round to nearest even at bit 13 */
    return (uint16_t)(sign | ((r - 0x38000000) >> 13)); /* rebias 127 -> 15 */
  }
  if (ax < 0x33000000) return sign;  /* below 2^-25 (or exactly it: tie to even 0) */
  /* subnormal half: value / 2^-24 rounded to nearest even; may round up to 0x0400 */
  uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - (ax >> 23);
  uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

float quant_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t quant_f32_to_bf16(float f) {
  uint32_t x = f2u(f);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
  return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- Dispatch ---------------------------------------------------------------------------- */

static quant__kernels k_scalar;
#if defined(__x86_64__)
static quant__kernels k_avx2, k_avx512;
static int have_avx2, have_avx512;
#elif defined(__aarch64__)
static quant__kernels k_neon; /* Advanced SIMD is part of every AArch64 Linux CPU */
#endif
static _Atomic(const quant__kernels *) active;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/* F16C is CPUID.1:ECX bit 29 (clang 14's __builtin_cpu_supports does not know it). */
static int cpu_has_f16c(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}
#endif

static void init_tables(void) {
  quant__fill_scalar(&k_scalar);
  const quant__kernels *best = &k_scalar;
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
              cpu_has_f16c();
  have_avx512 = have_avx2 && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  if (have_avx2) {
    k_avx2 = k_scalar;
    quant__fill_avx2(&k_avx2);
    best = &k_avx2;
  }
  if (have_avx512) {
    k_avx512 = have_avx2 ? k_avx2 : k_scalar;
    quant__fill_avx512(&k_avx512);
    best = &k_avx512;
  }
#elif defined(__aarch64__)
  k_neon = k_scalar;
  quant__fill_neon(&k_neon);
  best = &k_neon;
#endif
  atomic_store(&active, best);
}

void quant_init(void) { pthread_once(&init_once, init_tables); }

static const quant__kernels *kern(void) {
  const quant__kernels *k = atomic_load_explicit(&active, memory_order_acquire);
  if (k) return k;
  quant_init();
  return atomic_load(&active);
}

const char *quant_isa(void) { return kern()->isa; }

int quant_force_isa(const char *isa) {
  quant_init();
  if (!isa) return ERR_INVAL;
  if (!strcmp(isa, "scalar")) {
    atomic_store(&active, &k_scalar);
    return 0;
  }
#if defined(__x86_64__)
  if (!strcmp(isa, "avx2") && have_avx2) {
    atomic_store(&active, &k_avx2);
    return 0;
  }
  if (!strcmp(isa, "avx512") && have_avx512) {
    atomic_store(&active, &k_avx512);
    return 0;
  }
#elif defined(__aarch64__)
  if (!strcmp(isa, "neon")) {
    atomic_store(&active, &k_neon);
    return 0;
  }
#endif
  return ERR_UNSUPPORTED;
}

int quant_quantize_row(qtype t, const float *src, void *dst, int64_t n) {
  const quant_traits *tr = quant_traits_of((uint32_t)t);
  if (!tr || !tr->supported) return ERR_UNSUPPORTED;
  if (n < 0 || n % tr->block_size) return ERR_INVAL;
  quant__quant_fn f = kern()->quantize[t];
  if (!f) return ERR_UNSUPPORTED;
  f(src, dst, n);
  return 0;
}

void quant_dequantize_row(qtype t, const void *src, float *dst, int64_t n) {
  assert(quant_row_ok(t, n) && traits[t].supported);
  kern()->dequantize[t](src, dst, n);
}

float quant_vec_dot(qtype t, int64_t n, const void *w_row, const void *act_row) {
  assert(quant_row_ok(t, n) && traits[t].supported);
  return kern()->dot[t](n, w_row, act_row);
}

void quant_vec_dot_nx(qtype t, int64_t n, const void *w_row, size_t w_stride, int nw,
                      const void *act_rows, size_t act_stride, int na, float *out,
                      size_t out_stride) {
  assert(quant_row_ok(t, n) && traits[t].supported);
  assert(nw >= 1 && nw <= QUANT_NX_MAX && na >= 1 && na <= QUANT_NX_MAX);
  const quant__kernels *k = kern();
  if (k->dot_nx[t]) {
    k->dot_nx[t](n, w_row, w_stride, nw, act_rows, act_stride, na, out, out_stride);
    return;
  }
  const uint8_t *w = w_row, *a = act_rows;
  for (int i = 0; i < nw; i++)
    for (int j = 0; j < na; j++)
      out[(size_t)i * out_stride + (size_t)j] =
          k->dot[t](n, w + (size_t)i * w_stride, a + (size_t)j * act_stride);
}

void quant_vec_dot_nx_t(qtype t, int64_t n, const void *w_row, size_t w_stride, int nw,
                        const void *act_rows, size_t act_stride, int na, float *out,
                        size_t out_stride) {
  assert(quant_row_ok(t, n) && traits[t].supported);
  assert(nw >= 1 && nw <= QUANT_NX_MAX && na >= 1 && na <= QUANT_NX_MAX);
  const quant__kernels *k = kern();
  if (k->dot_nx_t[t]) {
    k->dot_nx_t[t](n, w_row, w_stride, nw, act_rows, act_stride, na, out, out_stride);
    return;
  }
  float tile[QUANT_NX_MAX * QUANT_NX_MAX];
  quant_vec_dot_nx(t, n, w_row, w_stride, nw, act_rows, act_stride, na, tile, QUANT_NX_MAX);
  for (int i = 0; i < nw; i++)
    for (int j = 0; j < na; j++) out[(size_t)j * out_stride + (size_t)i] = tile[i * QUANT_NX_MAX + j];
}

void quant_vec_dot_rows(qtype t, int64_t n, const void *w_row, size_t w_stride, int64_t nrows,
                        const void *act_row, float *out, size_t out_stride) {
  assert(quant_row_ok(t, n) && traits[t].supported && nrows >= 0);
  const quant__kernels *k = kern();
  if (k->dot_rows[t]) {
    k->dot_rows[t](n, w_row, w_stride, nrows, act_row, out, out_stride);
    return;
  }
  const quant__dot_fn dot = k->dot[t];
  const uint8_t *w = w_row;
  for (int64_t i = 0; i < nrows; i++) out[(size_t)i * out_stride] = dot(n, w + (size_t)i * w_stride, act_row);
}
