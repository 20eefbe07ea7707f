/* Device discovery: the CPU, CUDA GPUs (through libcuda loaded at run time,
 * so one binary runs on machines with and without a GPU and never links
 * CUDA), and the simulated accelerator used by the tests. */
#include <dlfcn.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "backend/vulkan/vk_backend.h"
#include "plan/plan.h"

const char *qe_fmt_bytes(uint64_t b, char *buf, size_t size) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 " B", b);
    else
        snprintf(buf, size, "%.2f %s", v, unit[u]);
    return buf;
}

/* Reads one unsigned number from a small file; 0 when absent or "max". */
static uint64_t read_u64_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[64] = {0};
    uint64_t v = 0;
    if (fgets(line, sizeof line, f) && line[0] >= '0' && line[0] <= '9') v = strtoull(line, NULL, 10);
    fclose(f);
    return v;
}

/* The smaller of MemAvailable and the room left under a cgroup limit
 * (containers often limit far below what /proc/meminfo shows). */
uint64_t qe_mem_available(const char **src) {
    uint64_t avail = 0;
    const char *from = "unknown";
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long kb;
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (uint64_t)kb * 1024;
                from = "MemAvailable";
                break;
            }
        }
        fclose(f);
    }
    /* cgroup v2, then v1. A v1 "unlimited" limit is a huge number, kept out
     * by comparing with what the machine has. */
    uint64_t lim = read_u64_file("/sys/fs/cgroup/memory.max");
    uint64_t used = read_u64_file("/sys/fs/cgroup/memory.current");
    if (!lim) {
        lim = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        used = read_u64_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    }
    if (lim && (avail == 0 || lim < avail + used)) {
        uint64_t room = lim > used ? lim - used : 0;
        if (avail == 0 || room < avail) {
            avail = room;
            from = "cgroup memory limit";
        }
    }
    if (src) *src = from;
    return avail;
}

/* ---- CUDA through the driver API, resolved with dlsym ---- */

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_get_fn)(int *, int);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_total_fn)(size_t *, int);
typedef int (*cu_retain_fn)(void **, int);
typedef int (*cu_release_fn)(int);
typedef int (*cu_setctx_fn)(void *);
typedef int (*cu_meminfo_fn)(size_t *, size_t *);

/* Returns the number of CUDA devices (0 when libcuda is absent or reports
 * none) and fills up to `max` names and memory sizes. Free memory needs a
 * context: the primary context is retained for the query and released. */
int qe_cuda_count(char names[][128], uint64_t *free_bytes, uint64_t *total_bytes, int max) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) return 0;
    cu_init_fn cu_init = (cu_init_fn)dlsym(h, "cuInit");
    cu_count_fn cu_count = (cu_count_fn)dlsym(h, "cuDeviceGetCount");
    cu_get_fn cu_get = (cu_get_fn)dlsym(h, "cuDeviceGet");
    cu_name_fn cu_name = (cu_name_fn)dlsym(h, "cuDeviceGetName");
    cu_total_fn cu_total = (cu_total_fn)dlsym(h, "cuDeviceTotalMem_v2");
    cu_retain_fn cu_retain = (cu_retain_fn)dlsym(h, "cuDevicePrimaryCtxRetain");
    cu_release_fn cu_release = (cu_release_fn)dlsym(h, "cuDevicePrimaryCtxRelease_v2");
    if (!cu_release) cu_release = (cu_release_fn)dlsym(h, "cuDevicePrimaryCtxRelease");
    cu_setctx_fn cu_setctx = (cu_setctx_fn)dlsym(h, "cuCtxSetCurrent");
    cu_meminfo_fn cu_meminfo = (cu_meminfo_fn)dlsym(h, "cuMemGetInfo_v2");
    int n = 0;
    if (!cu_init || !cu_count || !cu_get || cu_init(0) != 0 || cu_count(&n) != 0 || n < 0) {
        dlclose(h);
        return 0;
    }
    for (int i = 0; i < n && i < max; i++) {
        int dev = 0;
        snprintf(names[i], 128, "GPU %d", i);
        free_bytes[i] = total_bytes[i] = 0;
        if (cu_get(&dev, i) != 0) continue;
        if (cu_name) {
            char nm[100] = {0};
            if (cu_name(nm, (int)sizeof nm - 1, dev) == 0) snprintf(names[i], 128, "%s", nm);
        }
        size_t tot = 0;
        if (cu_total && cu_total(&tot, dev) == 0) total_bytes[i] = tot;
        void *ctx = NULL;
        if (cu_retain && cu_setctx && cu_meminfo && cu_retain(&ctx, dev) == 0) {
            size_t fr = 0, t2 = 0;
            if (cu_setctx(ctx) == 0 && cu_meminfo(&fr, &t2) == 0) free_bytes[i] = fr;
            cu_setctx(NULL);
            if (cu_release) cu_release(dev);
        }
    }
    /* libcuda stays loaded: unloading a driver library after cuInit is not
     * supported by every driver version. */
    return n;
}

static int online_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

qembed_status qe_devices_discover(const qembed_model_params *params, const qe_logger *lg, qe_devices *out,
                                  qembed_error *err) {
    QE_FAIL_IF(!params || !out, err, QEMBED_ERR_INVALID_ARGUMENT, "devices: NULL argument");
    memset(out, 0, sizeof *out);
    char b1[32], b2[32];

    /* The CPU: always present, always able to compute. */
    qe_device *cpu = &out->dev[out->n++];
    cpu->kind = QE_DEV_CPU;
    snprintf(cpu->name, sizeof cpu->name, "cpu");
    const char *avail_src = NULL;
    uint64_t avail = qe_mem_available(&avail_src);
    if (params->cpu_memory_limit) {
        cpu->budget = params->cpu_memory_limit;
        cpu->budget_src = "cpu_memory_limit";
    } else {
        cpu->budget = avail;
        cpu->budget_src = avail_src;
    }
    cpu->can_compute = 1;
    cpu->backend = &qe_backend_cpu;
    snprintf(cpu->detail, sizeof cpu->detail, "%d cores, %s, %s available", online_cores(),
             qe_isa_name(qe_cpu_isa()), qe_fmt_bytes(avail, b1, sizeof b1));
    if (qe_cpu_isa_note()[0]) QE_WARN(lg, "cpu: %s", qe_cpu_isa_note());
    QE_DEBUG(lg, "discovered: cpu (%s); budget %s (%s)", cpu->detail,
             qe_fmt_bytes(cpu->budget, b2, sizeof b2), cpu->budget_src);

    /* CUDA GPUs: reported, but no CUDA backend is built, so they hold no
     * layers (can_compute = 0) until one registers. */
    char names[8][128];
    uint64_t fr[8], tot[8];
    int n_gpu = qe_cuda_count(names, fr, tot, 8);
    if (n_gpu == 0) QE_DEBUG(lg, "device: no CUDA GPU (libcuda not found or no device)");
    for (int i = 0; i < n_gpu && i < 8 && out->n < QE_MAX_DEVICES; i++) {
        qe_device *g = &out->dev[out->n++];
        g->kind = QE_DEV_CUDA;
        g->index = i;
        snprintf(g->name, sizeof g->name, "cuda:%d %.100s", i, names[i]);
        snprintf(g->detail, sizeof g->detail, "%s free of %s", qe_fmt_bytes(fr[i], b1, sizeof b1),
                 qe_fmt_bytes(tot[i], b2, sizeof b2));
        g->budget =
            params->gpu_memory_limit && params->gpu_memory_limit < fr[i] ? params->gpu_memory_limit : fr[i];
        g->budget_src = params->gpu_memory_limit ? "gpu_memory_limit" : "free memory";
        g->can_compute = 0;
        g->is_gpu = 1;
        snprintf(g->unused_why, sizeof g->unused_why, "no CUDA backend in this build");
        QE_DEBUG(lg, "discovered: %s (%s); no CUDA backend in this build", g->name, g->detail);
    }

    /* Vulkan devices: each backend lists its own. */
    qe_vk_discover(params, lg, out);

    if (params->sim_accel_memory > 0 && out->n < QE_MAX_DEVICES) {
        qe_device *s = &out->dev[out->n++];
        s->kind = QE_DEV_SIM_ACCEL;
        snprintf(s->name, sizeof s->name, "sim-accel (test device)");
        snprintf(s->detail, sizeof s->detail, "simulated accelerator, runs the CPU backend");
        s->budget = params->sim_accel_memory;
        s->budget_src = "sim_accel_memory";
        s->can_compute = 1;
        s->backend = &qe_backend_cpu;
        QE_DEBUG(lg, "discovered: %s; budget %s", s->name, qe_fmt_bytes(s->budget, b1, sizeof b1));
    }
    return QEMBED_OK;
}
