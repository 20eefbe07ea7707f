/* Persistent thread pool: threads are created once (per context) and wait
 * for work between operations, first spinning briefly (a transformer layer
 * issues its next matrix product within microseconds) and then blocking on a
 * condition variable so that an idle pool costs no CPU.
 *
 * Protocol for one qe_threadpool_run():
 *   the caller stores the job (fn, arg, n_tasks), resets the task counter and
 *   the count of workers still busy, then bumps `gen` (release). Each worker
 *   that sees a new `gen` (acquire) takes tasks from the shared counter until
 *   none are left, then decrements `busy`. The caller takes tasks too and
 *   returns only when `busy` is 0, so jobs never overlap and the job fields
 *   are never written while a worker may read them.
 * One caller at a time per pool (a pool belongs to one qembed_ctx). */
#include "kernels.h"
#include "matmul_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spin iterations before a waiting worker blocks. One `pause` is ~10-70
 * cycles depending on the core; 4096 of them is roughly 20-100 us: long
 * enough to bridge the gap between consecutive products of one forward pass,
 * short enough not to burn a shared machine's cores while idle. */
#define QE_SPIN_ITERS 4096

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct qe_threadpool {
    int n_threads;      /* including the caller's thread (thread 0) */
    pthread_t *threads; /* (n_threads - 1) workers, thread index 1.. */

    /* the current job; written by the caller only while no worker runs */
    qe_task_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next_task;
    atomic_int busy; /* workers that have not finished the current job */
    atomic_uint gen; /* job generation: bumped once per qe_threadpool_run */
    atomic_int stop;

    pthread_mutex_t mu; /* guards the sleep/wake hand-off only */
    pthread_cond_t cv;
    int n_sleeping; /* workers blocked in cv (under mu) */

    /* n_threads * QE_MM_SCRATCH bytes: each thread's packed-activation
     * block (qe_threadpool_thread_scratch), allocated once here. */
    unsigned char *scratch;
    /* QE_MM_CONV bytes for the oneDNN variant (qe_threadpool_conv_block), or NULL */
    void *conv;
    /* q8_bytes bytes (0 until qe_threadpool_reserve_q8): the int8 products'
     * activations, quantized once per product and shared by every thread
     * (qe_threadpool_q8_block) */
    void *q8act;
    size_t q8_bytes;
};

static void run_tasks(qe_threadpool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->arg, t, thread);
    }
}

typedef struct worker_arg {
    qe_threadpool *pool;
    int index;
} worker_arg;

static void *worker_main(void *varg) {
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    qe_threadpool *p = wa.pool;
    /* Generation 0 is "no work yet". Loading p->gen here instead would lose
     * the first job when qe_threadpool_run bumps gen before this thread starts
     * (then busy never reaches 0 and qe_threadpool_run spins forever). */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            if (++spins < QE_SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
                p->n_sleeping++;
                pthread_cond_wait(&p->cv, &p->mu);
                p->n_sleeping--;
            }
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = g;
        run_tasks(p, wa.index);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
    return NULL;
}

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0 && (n <= 0 || c < n)) n = c;
    }
#endif
    return n > 0 ? (int)n : 1;
}

qe_threadpool *qe_threadpool_create(int n_threads) {
    if (n_threads <= 0) n_threads = online_cores();
    if (n_threads > 1024) n_threads = 1024;
    qe_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = 1;
    atomic_init(&p->next_task, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    void *scratch = NULL;
    if (posix_memalign(&scratch, 64, (size_t)n_threads * QE_MM_SCRATCH) != 0) {
        qe_threadpool_free(p);
        return NULL;
    }
    p->scratch = scratch;
    int amx = 0;
    /* not qe_cpu_isa(): its self-check runs on pools. The oneDNN variant
     * runs at levels amx and avx512bf16 (its many-row products, matmul.c) */
    qe_isa hw = qe_cpu_features(&amx);
    if ((amx || hw >= QE_ISA_AVX512_BF16) && posix_memalign(&p->conv, 64, QE_MM_CONV) != 0) {
        p->conv = NULL;
        qe_threadpool_free(p);
        return NULL;
    }
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            qe_threadpool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) {
                qe_threadpool_free(p);
                return NULL;
            }
            wa->pool = p;
            wa->index = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                qe_threadpool_free(p);
                return NULL;
            }
            p->n_threads = i + 1; /* workers [1, i] exist: qe_threadpool_free joins them */
        }
    }
    return p;
}

void qe_threadpool_free(qe_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->scratch);
    free(p->conv);
    free(p->q8act);
    free(p);
}

int qe_threadpool_size(const qe_threadpool *p) {
    return p ? p->n_threads : 1;
}

size_t qe_threadpool_scratch_bytes(const qe_threadpool *p) {
    return p ? (size_t)p->n_threads * QE_MM_SCRATCH + (p->conv ? QE_MM_CONV : 0) + p->q8_bytes : 0;
}

int qe_threadpool_reserve_q8(qe_threadpool *p, size_t bytes) {
    if (!p || bytes <= p->q8_bytes) return 0;
    void *b = NULL;
    if (posix_memalign(&b, 64, bytes) != 0) return -1;
    free(p->q8act);
    p->q8act = b;
    p->q8_bytes = bytes;
    return 0;
}

void *qe_threadpool_q8_block(qe_threadpool *p, size_t bytes) {
    return p && bytes <= p->q8_bytes ? p->q8act : NULL;
}

void *qe_threadpool_conv_block(qe_threadpool *p) {
    return p ? p->conv : NULL;
}

void qe_threadpool_run(qe_threadpool *p, qe_task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n_threads - 1, memory_order_relaxed);
    /* The mutex orders the generation bump against a worker that is about to
     * sleep: it either sees the new gen under the lock or is woken. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->n_sleeping > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);

    run_tasks(p, 0);

    int spins = 0;
    while (atomic_load_explicit(&p->busy, memory_order_acquire) > 0) {
        /* A worker descheduled by another process (this machine is shared)
         * would keep us spinning: yield after a while instead. */
        if (++spins < QE_SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
}

void *qe_threadpool_thread_scratch(qe_threadpool *p, int thread) {
    if (!p || thread < 0 || thread >= p->n_threads) return NULL;
    return p->scratch + (size_t)thread * QE_MM_SCRATCH;
}
