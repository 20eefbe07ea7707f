/* qe_matmul_onednn: BF16 mode on bf16 weights through oneDNN's matmul, for
 * CPUs with AMX-BF16 (level QE_ISA_AMX). There oneDNN's brgemm kernels run
 * the tile instructions (tdpbf16ps), which on the Emerald Rapids machine of
 * 2026-12-06 measured ~3-6x the zmm variants on the 0.6B shapes, 16 to 512
 * rows (bench/kernels/results-2026-12-06*.txt): a 16x16x32 tile product per
 * instruction against 16x2 per vdpbf16ps. Hand-writing AMX (tile
 * configuration, the kernel's permission request, B in the VNNI pair layout)
 * is what oneDNN already does well; this file only adapts the call.
 *
 * Level QE_ISA_AVX512_BF16 (AVX512-BF16 without AMX, e.g. AMD Zen 4) routes
 * its many-row products here too (matmul.c), where oneDNN's zmm brgemm
 * kernels run vdpbf16ps faster than qembed's own (matmul_avx512.c), but only
 * when oneDNN cannot use AMX (qe_onednn_without_amx): on a CPU with AMX that
 * level is QEMBED_ISA=avx512bf16 (or lower), and then oneDNN is capped to
 * avx512_core_bf16 when loaded (dnnl_set_max_cpu_isa, which counts only
 * before oneDNN's first kernel; the level is fixed per process, as is the
 * cap). A cap the user set (ONEDNN_MAX_CPU_ISA) is left as it is.
 *
 * Run-time optional: libdnnl.so.2 (Debian libdnnl2) is loaded with dlopen on
 * first use, never linked, so libqembed runs without it (then the level is
 * not offered and the AVX-512 variants run). Built only where the oneDNN 2.x
 * header is present (libdnnl-dev); the version-2 C API is what is called.
 *
 * Contract kept with the other variants:
 *  - weights are used as stored: W (n, k) row-major is oneDNN's (k, n) with
 *    strides {1, k}; no reorder and no copy (a reordered copy measured faster
 *    for 16 rows but doubles the weights' memory);
 *  - activations are rounded to bf16 (round to nearest even, NaN quieted,
 *    exactly qe_f32_to_bf16) into the pool's conversion block, in chunks of
 *    rows that fit it (QE_MM_CONV bytes), so the weights are read once per
 *    chunk; without a pool the chunk is malloc'ed for the call;
 *  - y is written with its row stride ldy, accumulated in f32.
 * Primitives are cached per (rows, k, n, ldy) (a forward pass has 7 shapes
 * per chunk size); creating one costs ~0.1-1 ms. oneDNN runs its own OpenMP
 * threads, as many as the pool has, from the calling thread while the pool's
 * workers wait; calls are serialised by one lock (they use every core). */
#include "matmul_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#if DNNL_VERSION_MAJOR == 2
#define QE_ONEDNN 1
#endif
#endif
#endif

#ifdef QE_ONEDNN
#include <dlfcn.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>

/* The oneDNN functions used, resolved from the library at run time. */
static struct {
    dnnl_status_t (*engine_create)(dnnl_engine_t *, dnnl_engine_kind_t, size_t);
    dnnl_status_t (*stream_create)(dnnl_stream_t *, dnnl_engine_t, unsigned);
    dnnl_status_t (*stream_destroy)(dnnl_stream_t);
    dnnl_status_t (*md_by_strides)(dnnl_memory_desc_t *, int, const dnnl_dims_t, dnnl_data_type_t,
                                   const dnnl_dims_t);
    dnnl_status_t (*matmul_desc_init)(dnnl_matmul_desc_t *, const dnnl_memory_desc_t *,
                                      const dnnl_memory_desc_t *, const dnnl_memory_desc_t *,
                                      const dnnl_memory_desc_t *);
    dnnl_status_t (*pd_create)(dnnl_primitive_desc_t *, const_dnnl_op_desc_t, const_dnnl_primitive_attr_t,
                               dnnl_engine_t, const_dnnl_primitive_desc_t);
    dnnl_status_t (*pd_destroy)(dnnl_primitive_desc_t);
    dnnl_status_t (*prim_create)(dnnl_primitive_t *, const_dnnl_primitive_desc_t);
    dnnl_status_t (*prim_destroy)(dnnl_primitive_t);
    dnnl_status_t (*mem_create)(dnnl_memory_t *, const dnnl_memory_desc_t *, dnnl_engine_t, void *);
    dnnl_status_t (*mem_set)(dnnl_memory_t, void *);
    dnnl_status_t (*mem_destroy)(dnnl_memory_t);
    dnnl_status_t (*execute)(const_dnnl_primitive_t, dnnl_stream_t, int, const dnnl_exec_arg_t *);
    dnnl_status_t (*stream_wait)(dnnl_stream_t);
    dnnl_status_t (*set_cache_capacity)(int);
    dnnl_status_t (*set_max_isa)(dnnl_cpu_isa_t);
    dnnl_cpu_isa_t (*effective_isa)(void);
    void (*omp_set_num_threads)(int); /* libgomp, loaded with oneDNN; may be absent */
} g_fn;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ok, g_no_amx;
static dnnl_engine_t g_eng;
static atomic_ulong g_calls; /* products run here (qe_onednn_calls) */

/* 1 when QEMBED_ISA asks for a level below amx and ONEDNN_MAX_CPU_ISA is
 * not set: oneDNN is then capped to avx512_core_bf16 */
static int want_cap(void) {
    const char *env = getenv("QEMBED_ISA");
    qe_isa lvl;
    if (!env || qe_isa_parse(env, &lvl) != 0 || lvl >= QE_ISA_AMX) return 0;
    return !getenv("ONEDNN_MAX_CPU_ISA") && !getenv("DNNL_MAX_CPU_ISA");
}

static void load_once(void) {
    /* qe_mm_to_bf16_rows is AVX-512 code; the level that calls this implies it */
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return;
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
#define SYM(field, name)                        \
    do {                                        \
        *(void **)&g_fn.field = dlsym(h, name); \
        if (!g_fn.field) return;                \
    } while (0)
    SYM(engine_create, "dnnl_engine_create");
    SYM(stream_create, "dnnl_stream_create");
    SYM(stream_destroy, "dnnl_stream_destroy");
    SYM(md_by_strides, "dnnl_memory_desc_init_by_strides");
    SYM(matmul_desc_init, "dnnl_matmul_desc_init");
    SYM(pd_create, "dnnl_primitive_desc_create");
    SYM(pd_destroy, "dnnl_primitive_desc_destroy");
    SYM(prim_create, "dnnl_primitive_create");
    SYM(prim_destroy, "dnnl_primitive_destroy");
    SYM(mem_create, "dnnl_memory_create");
    SYM(mem_set, "dnnl_memory_set_data_handle");
    SYM(mem_destroy, "dnnl_memory_destroy");
    SYM(execute, "dnnl_primitive_execute");
    SYM(stream_wait, "dnnl_stream_wait");
    SYM(set_cache_capacity, "dnnl_set_primitive_cache_capacity");
    SYM(set_max_isa, "dnnl_set_max_cpu_isa");
    SYM(effective_isa, "dnnl_get_effective_cpu_isa");
#undef SYM
    /* before anything that can generate a kernel; a failure (oneDNN already
     * used by the host program) shows in the effective ISA below */
    if (want_cap()) g_fn.set_max_isa(dnnl_cpu_isa_avx512_core_bf16);
    /* the AMX bits of the ISA mask (avx512_core_amx less avx512_core_bf16) */
    g_no_amx = (g_fn.effective_isa() & (dnnl_cpu_isa_avx512_core_amx & ~dnnl_cpu_isa_avx512_core_bf16)) == 0;
    /* this file keeps its own bounded cache (below); oneDNN's own (1024
     * primitives by default) would keep every shape ever seen alive too */
    g_fn.set_cache_capacity(0);
    /* libgomp, loaded with oneDNN: each call runs on one OpenMP thread (the
     * pool's thread that makes it); without it oneDNN would start its own
     * team, whose static split stalls whenever another process takes a core */
    *(void **)&g_fn.omp_set_num_threads = dlsym(h, "omp_set_num_threads");
    if (!g_fn.omp_set_num_threads) return;
    if (g_fn.engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success) return;
    g_ok = 1; /* the library stays loaded for the process's life */
}

int qe_onednn_available(void) {
    pthread_once(&g_once, load_once);
    return g_ok;
}

int qe_onednn_without_amx(void) {
    pthread_once(&g_once, load_once);
    return g_ok && g_no_amx;
}

unsigned long qe_onednn_calls(void) {
    return atomic_load(&g_calls);
}

/* ---- primitive cache ----
 * An entry (primitive, its stream and memory objects) is used by one thread
 * at a time (`busy`), so concurrent calls (two pools, two threads of one
 * pool) never share a primitive's scratchpad or memory objects. */
#define CACHE 32 /* 4-8 shapes x 2 column widths per row count: a few row counts */
typedef struct entry {
    int m, k, n;
    size_t ldy;
    int busy;
    unsigned long long used; /* last use, for eviction */
    dnnl_primitive_t prim;
    dnnl_stream_t st;
    dnnl_memory_t src, wei, dst;
} entry;
static entry g_cache[CACHE];
static unsigned long long g_clock;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void entry_free(entry *e) {
    if (e->prim) g_fn.prim_destroy(e->prim);
    if (e->st) g_fn.stream_destroy(e->st);
    if (e->src) g_fn.mem_destroy(e->src);
    if (e->wei) g_fn.mem_destroy(e->wei);
    if (e->dst) g_fn.mem_destroy(e->dst);
    memset(e, 0, sizeof *e);
}

static int entry_make(entry *e, int m, int k, int n, size_t ldy) {
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_dims_t sd = {m, k}, ss = {k, 1}, wd = {k, n}, ws = {1, k}, dd = {m, n}, ds = {(dnnl_dim_t)ldy, 1};
    if (g_fn.md_by_strides(&smd, 2, sd, dnnl_bf16, ss) != dnnl_success ||
        g_fn.md_by_strides(&wmd, 2, wd, dnnl_bf16, ws) != dnnl_success ||
        g_fn.md_by_strides(&dmd, 2, dd, dnnl_f32, ds) != dnnl_success)
        return -1;
    dnnl_matmul_desc_t desc;
    if (g_fn.matmul_desc_init(&desc, &smd, &wmd, NULL, &dmd) != dnnl_success) return -1;
    dnnl_primitive_desc_t pd = NULL;
    if (g_fn.pd_create(&pd, &desc, NULL, g_eng, NULL) != dnnl_success) return -1;
    *e = (entry){m, k, n, ldy, 1, ++g_clock, NULL, NULL, NULL, NULL, NULL};
    dnnl_status_t s = g_fn.prim_create(&e->prim, pd);
    g_fn.pd_destroy(pd);
    if (s != dnnl_success || g_fn.stream_create(&e->st, g_eng, dnnl_stream_default_flags) != dnnl_success ||
        g_fn.mem_create(&e->src, &smd, g_eng, DNNL_MEMORY_NONE) != dnnl_success ||
        g_fn.mem_create(&e->wei, &wmd, g_eng, DNNL_MEMORY_NONE) != dnnl_success ||
        g_fn.mem_create(&e->dst, &dmd, g_eng, DNNL_MEMORY_NONE) != dnnl_success) {
        entry_free(e);
        return -1;
    }
    return 0;
}

/* A free entry for x (m, k) bf16 contiguous times W (n, k) bf16 rows into
 * y (m, n) f32 with row stride ldy, marked busy; NULL when none can be made
 * (oneDNN refuses, or every entry is busy). entry_release gives it back. */
static entry *entry_get(int m, int k, int n, size_t ldy) {
    pthread_mutex_lock(&g_mu);
    entry *victim = NULL, *hit = NULL;
    for (int i = 0; i < CACHE && !hit; i++) {
        entry *e = &g_cache[i];
        if (e->busy) continue;
        if (e->prim && e->m == m && e->k == k && e->n == n && e->ldy == ldy)
            hit = e;
        else if (!victim || !e->prim || (victim->prim && e->used < victim->used))
            victim = e;
    }
    if (hit) {
        hit->busy = 1;
        hit->used = ++g_clock;
    } else if (victim) {
        /* created under the lock: ~0.1-1 ms, once per shape */
        entry_free(victim);
        if (entry_make(victim, m, k, n, ldy) == 0) hit = victim;
    }
    pthread_mutex_unlock(&g_mu);
    return hit;
}

static void entry_release(entry *e) {
    pthread_mutex_lock(&g_mu);
    e->busy = 0;
    pthread_mutex_unlock(&g_mu);
}

/* One chunk of rows: first its bf16 copy (row tasks), then column tasks,
 * each one oneDNN call on one thread over a slice of the weight rows. */
typedef struct job {
    const qe_mm_args *a;
    int i0, mc, n_tasks;
    uint16_t *xb;
    atomic_int failed;
} job;

static void convert_task(void *arg, int t, int thread) {
    (void)thread;
    job *jb = arg;
    int r0 = (int)((long long)jb->mc * t / jb->n_tasks),
        r1 = (int)((long long)jb->mc * (t + 1) / jb->n_tasks);
    if (r1 > r0)
        qe_mm_to_bf16_rows(jb->a->x + (size_t)(jb->i0 + r0) * jb->a->ldx, jb->a->ldx, r1 - r0, jb->a->k,
                           jb->xb + (size_t)r0 * jb->a->k, (size_t)jb->a->k);
}

static void product_task(void *arg, int t, int thread) {
    (void)thread;
    job *jb = arg;
    const qe_mm_args *a = jb->a;
    int j0, j1;
    qe_mm_split(a->n, jb->n_tasks, 64, t, &j0, &j1);
    if (j0 >= j1) return;
    entry *e = entry_get(jb->mc, a->k, j1 - j0, a->ldy);
    if (!e) {
        atomic_store(&jb->failed, 1);
        return;
    }
    g_fn.omp_set_num_threads(1); /* this thread's own setting */
    g_fn.mem_set(e->src, jb->xb);
    g_fn.mem_set(e->wei, (uint16_t *)a->w + (size_t)j0 * a->k);
    g_fn.mem_set(e->dst, a->y + (size_t)jb->i0 * a->ldy + j0);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst}};
    if (g_fn.execute(e->prim, e->st, 3, args) != dnnl_success || g_fn.stream_wait(e->st) != dnnl_success)
        atomic_store(&jb->failed, 1);
    entry_release(e);
}

int qe_matmul_onednn(const qe_mm_args *a) {
    if (a->mode != QE_MM_BF16 || a->wt != QE_BF16) return -1; /* bf16 x bf16 only */
    if (!qe_onednn_available()) return -1;
    const size_t row_bytes = (size_t)a->k * 2;
    if (row_bytes * 16 > QE_MM_CONV) return -1; /* k > 131072: not a model's width */
    int chunk = (int)(QE_MM_CONV / row_bytes) / 16 * 16;
    if (chunk > a->m) chunk = a->m;
    uint16_t *buf = a->pool ? qe_threadpool_conv_block(a->pool) : NULL, *own = NULL;
    if (!buf) {
        own = malloc((size_t)chunk * row_bytes);
        if (!own) return -1;
        buf = own;
    }
    int threads = qe_threadpool_size(a->pool);
    /* two column slices per thread: one slow thread does not hold the call */
    int cols = threads > 1 ? 2 * threads : 1, tiles = (a->n + 63) / 64;
    if (cols > tiles) cols = tiles;
    job jb = {a, 0, 0, cols, buf, 0};
    for (int i0 = 0; i0 < a->m && !atomic_load(&jb.failed); i0 += chunk) {
        jb.i0 = i0;
        jb.mc = a->m - i0 < chunk ? a->m - i0 : chunk;
        /* a query's rows (16 x 1024: ~5 us) convert faster than a hand-off */
        jb.n_tasks = (size_t)jb.mc * (size_t)a->k < 65536 ? 1 : threads < jb.mc ? threads : jb.mc;
        if (jb.n_tasks == 1)
            convert_task(&jb, 0, 0);
        else
            qe_threadpool_run(a->pool, convert_task, &jb, jb.n_tasks);
        jb.n_tasks = cols;
        qe_threadpool_run(a->pool, product_task, &jb, cols);
    }
    free(own);
    /* a failure (oneDNN refused a shape) leaves y partly written: the caller
     * then runs the next variant over the whole product */
    if (atomic_load(&jb.failed)) return -1;
    atomic_fetch_add(&g_calls, 1);
    return 0;
}

#else
int qe_onednn_available(void) {
    return 0;
}
int qe_onednn_without_amx(void) {
    return 0;
}
unsigned long qe_onednn_calls(void) {
    return 0;
}
int qe_matmul_onednn(const qe_mm_args *a) {
    (void)a;
    return -1;
}
#endif
