/* The placement planner: contiguous layer segments on the allowed devices, in
 * preference order, within each device's budget, decided before any weight is
 * touched. Pure: configs and budgets in, a plan out (the tests drive it with
 * made-up devices). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/forward.h"
#include "model/weights.h"
#include "plan/plan.h"

#define DEFAULT_MAX_BATCH_TOKENS 16384
/* Sequences per pass whose pooled outputs a context stages (embed.h's
 * QE_MAX_SEQ_PER_PASS; repeated here to keep the planner free of the engine). */
#define QE_PLAN_MAX_SEQ 512

/* One device's activation workspace for T = max_batch_tokens tokens, in
 * bytes. H hidden, Q = n_heads*head_dim, KV = n_kv_heads*head_dim,
 * I intermediate, D head_dim, P threads:
 *   f32 buffers          4*T*(2H + Q + 2KV + Q + 2I)
 *                        (residual x and normed x; q, k, v; attention output;
 *                         MLP gate and up, the largest live set of a layer)
 *   bf16 matmul input    2*T*max(H, Q, I)
 *   attention tiles      4*P*T   (one row of scores per thread; a sequence is
 *                                 at most T tokens long)
 *   RoPE tables          4*T*D   (cos and sin, D/2 each)
 * Buffers are reused layer after layer, so a device pays this once however
 * many layers it holds. Deliberately an upper bound on what the CPU forward
 * pass keeps live: planning must not under-count. */
uint64_t qe_plan_workspace_bytes(const qe_config *cfg, size_t max_batch_tokens, int n_threads) {
    uint64_t T = max_batch_tokens ? max_batch_tokens : DEFAULT_MAX_BATCH_TOKENS;
    uint64_t H = (uint64_t)cfg->hidden_size;
    uint64_t Q = (uint64_t)cfg->n_heads * (uint64_t)cfg->head_dim;
    uint64_t KV = (uint64_t)cfg->n_kv_heads * (uint64_t)cfg->head_dim;
    uint64_t I = (uint64_t)cfg->intermediate_size;
    uint64_t D = (uint64_t)cfg->head_dim;
    uint64_t P = n_threads > 0 ? (uint64_t)n_threads : 1;
    uint64_t widest = H > Q ? H : Q;
    if (I > widest) widest = I;
    return 4 * T * (2 * H + Q + 2 * KV + Q + 2 * I) + 2 * T * widest + 4 * P * T + 4 * T * D;
}

/* The workspace a device needs: what its backend says it allocates. The CPU
 * and the simulated accelerator run the CPU kernels, whose state is known
 * exactly (qe_fwd_state_bytes: activations for T tokens, MLP in row chunks)
 * plus the context's id and pooled-output staging; a GPU has no backend yet,
 * so the upper-bound formula above stands in for it. */
uint64_t qe_plan_cpu_workspace_bytes(const qe_config *cfg, size_t T, int threads) {
    return qe_fwd_state_bytes(cfg, (int)T, threads) + (uint64_t)T * sizeof(int32_t) +
           (uint64_t)QE_PLAN_MAX_SEQ * (uint64_t)cfg->hidden_size * sizeof(float);
}

/* A device with a backend says its own sizes; without one (a made-up device
 * in the tests, a CUDA GPU before its backend) its kind decides. */
static uint64_t device_workspace(const qe_device *d, const qe_config *cfg, size_t T, int threads) {
    if (d->backend) return d->backend->workspace_bytes(d, cfg, T, threads);
    if (d->kind == QE_DEV_CUDA || d->kind == QE_DEV_VULKAN) return qe_plan_workspace_bytes(cfg, T, threads);
    return qe_plan_cpu_workspace_bytes(cfg, T, threads);
}

static uint64_t device_embed(const qe_device *d, const qe_config *cfg, qe_dtype dt) {
    return d->backend ? d->backend->embed_bytes(cfg, dt) : qe_plan_embed_bytes(cfg, dt);
}

static int is_gpu(const qe_device *d) {
    return d->is_gpu || d->kind == QE_DEV_CUDA || d->kind == QE_DEV_VULKAN;
}

uint64_t qe_plan_embed_bytes(const qe_config *cfg, qe_dtype dt) {
    return qe_dtype_bytes(dt, (uint64_t)cfg->vocab_size * (uint64_t)cfg->hidden_size);
}

uint64_t qe_plan_norm_bytes(const qe_config *cfg, qe_dtype dt) {
    return qe_dtype_bytes(dt, (uint64_t)cfg->hidden_size);
}

/* Devices allowed by the compute units, most preferred first. CoreML's
 * semantics: CPU_AND_NE excludes the GPU; there is no neural engine on
 * Linux, so it is the CPU alone. The simulated accelerator stands in for a
 * GPU-class device. Only devices with a backend (can_compute) hold layers. */
static int device_order(const qe_devices *devs, qembed_compute_units u, int *order) {
    int n = 0;
    if (u == QEMBED_UNITS_ALL || u == QEMBED_UNITS_CPU_AND_GPU) {
        for (int i = 0; i < devs->n; i++)
            if (is_gpu(&devs->dev[i]) && devs->dev[i].can_compute) order[n++] = i;
        for (int i = 0; i < devs->n; i++)
            if (devs->dev[i].kind == QE_DEV_SIM_ACCEL && devs->dev[i].can_compute) order[n++] = i;
    }
    for (int i = 0; i < devs->n; i++)
        if (devs->dev[i].kind == QE_DEV_CPU && devs->dev[i].can_compute) order[n++] = i;
    return n;
}

/* Appends to a fixed buffer, truncating silently (it is a message). */
static void appendf(char *buf, size_t size, const char *fmt, ...) QE_PRINTF(3, 4);
static void appendf(char *buf, size_t size, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static int threads_for(const qembed_model_params *p) {
    if (p->n_threads > 0) return p->n_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

qembed_status qe_plan_make(const qe_config *cfg, qe_dtype dt, const qe_devices *devs,
                           const qembed_model_params *params, const qe_logger *lg, qe_plan *out,
                           qembed_error *err) {
    QE_FAIL_IF(!cfg, err, QEMBED_ERR_INVALID_ARGUMENT, "planner: NULL argument");
    return qe_plan_make_sized(cfg, dt, qe_layer_bytes(cfg, dt), devs, params, lg, out, err);
}

qembed_status qe_plan_make_sized(const qe_config *cfg, qe_dtype dt, uint64_t layer_bytes,
                                 const qe_devices *devs, const qembed_model_params *params,
                                 const qe_logger *lg, qe_plan *out, qembed_error *err) {
    QE_FAIL_IF(!cfg || !devs || !params || !out, err, QEMBED_ERR_INVALID_ARGUMENT, "planner: NULL argument");
    QE_FAIL_IF(cfg->n_layers <= 0, err, QEMBED_ERR_MODEL_FORMAT, "planner: model has %d layers",
               cfg->n_layers);
    memset(out, 0, sizeof *out);
    qembed_compute_units units = params->compute_units;
    QE_FAIL_IF((int)units < 0 || (int)units > 3, err, QEMBED_ERR_INVALID_ARGUMENT,
               "planner: compute units value %d is not one of ALL, CPU_AND_GPU, CPU_AND_NE, "
               "CPU_ONLY",
               (int)units);
    out->units = units;
    const char *uname = qembed_compute_units_name(units);
    QE_INFO(lg, "Requesting compute units: %s", uname);
    for (int i = 0; i < devs->n; i++) {
        const qe_device *d = &devs->dev[i];
        char b[32];
        QE_INFO(lg, "device: %s (%s); budget %s (%s)%s%s", d->name, d->detail,
                qe_fmt_bytes(d->budget, b, sizeof b), d->budget_src ? d->budget_src : "given",
                d->can_compute ? "" : "; holds no layers: ",
                d->can_compute ? "" : (d->unused_why[0] ? d->unused_why : "no backend in this build"));
    }

    int n_cuda = 0, n_cuda_usable = 0, n_sim = 0;
    for (int i = 0; i < devs->n; i++) {
        if (devs->dev[i].kind == QE_DEV_CUDA) n_cuda++;
        if (is_gpu(&devs->dev[i])) n_cuda_usable += devs->dev[i].can_compute;
        if (devs->dev[i].kind == QE_DEV_SIM_ACCEL) n_sim++;
    }
    if (units == QEMBED_UNITS_CPU_AND_NE)
        QE_WARN(lg, "compute units CPU_AND_NE: no neural engine on this machine (there is none on "
                    "Linux); using the CPU instead (the GPU is excluded, as CoreML's CPU_AND_NE "
                    "excludes it)");
    else if (units == QEMBED_UNITS_CPU_AND_GPU && n_cuda_usable + n_sim == 0)
        QE_WARN(lg,
                "compute units CPU_AND_GPU: no usable GPU (%d CUDA device%s found%s); using "
                "the CPU instead",
                n_cuda, n_cuda == 1 ? "" : "s", n_cuda ? ", but this build has no CUDA backend" : "");
    else if (units == QEMBED_UNITS_ALL && n_cuda_usable + n_sim == 0)
        QE_INFO(lg, "compute units ALL: no accelerator available%s; using the CPU",
                n_cuda ? " (CUDA GPU found, but this build has no CUDA backend)" : "");

    int order[QE_MAX_DEVICES];
    int n_order = device_order(devs, units, order);
    QE_FAIL_IF(n_order == 0, err, QEMBED_ERR_PLACEMENT,
               "placement: no device allowed by compute units %s can run layers", uname);

    const int L = cfg->n_layers;
    const uint64_t lb = layer_bytes;
    const uint64_t eb = qe_plan_embed_bytes(cfg, dt);
    const uint64_t nb = qe_plan_norm_bytes(cfg, dt);
    const size_t T = params->max_batch_tokens ? params->max_batch_tokens : DEFAULT_MAX_BATCH_TOKENS;
    const int threads = threads_for(params);
    /* Workspace of the preferred device, for the messages. */
    const uint64_t W = device_workspace(&devs->dev[order[0]], cfg, T, threads);
    const uint64_t whole = W + eb + (uint64_t)L * lb + nb;
    char b1[32], b2[32], b3[32], b4[32];

    /* Greedy in preference order: each device takes as many of the next
     * layers as fit beside its workspace (and the embedding, when it starts
     * the model). Contiguity keeps one hand-off of the hidden state per
     * device boundary. */
    int layer = 0;
    char skipped[512] = "";
    for (int oi = 0; oi < n_order && layer < L; oi++) {
        const qe_device *d = &devs->dev[order[oi]];
        char why[160] = "";
        if (d->backend && !d->backend->supports(d, cfg, dt, T, why, sizeof why)) {
            QE_WARN(lg, "%s cannot run this model: %s; it holds no layers", d->name, why);
            appendf(skipped, sizeof skipped, "%s%s cannot run this model (%s)", skipped[0] ? "; " : "",
                    d->name, why);
            continue;
        }
        const uint64_t Wd = device_workspace(d, cfg, T, threads);
        const uint64_t ebd = device_embed(d, cfg, dt);
        uint64_t base = Wd + (layer == 0 ? ebd : 0);
        uint64_t room = d->budget > base ? d->budget - base : 0;
        int k = 0;
        if (d->budget > base) {
            uint64_t fit = lb ? room / lb : (uint64_t)L;
            k = fit > (uint64_t)(L - layer) ? L - layer : (int)fit;
            /* The final norm rides with the last layer. */
            if (k > 0 && layer + k == L && (uint64_t)k * lb + nb > room) k--;
        }
        if (k <= 0) {
            appendf(skipped, sizeof skipped,
                    "%s%s (budget %s) cannot hold even one layer beside "
                    "its workspace %s%s",
                    skipped[0] ? "; " : "", d->name, qe_fmt_bytes(d->budget, b1, sizeof b1),
                    qe_fmt_bytes(Wd, b2, sizeof b2), layer == 0 ? " and the embedding" : "");
            continue;
        }
        QE_FAIL_IF(out->n_segments >= QE_MAX_SEGMENTS, err, QEMBED_ERR_INTERNAL,
                   "planner: more than %d segments", QE_MAX_SEGMENTS);
        qe_plan_segment *s = &out->seg[out->n_segments++];
        s->first_layer = layer;
        s->end_layer = layer + k;
        s->device = order[oi];
        s->kind = d->kind;
        snprintf(s->device_name, sizeof s->device_name, "%s", d->name);
        s->has_embed = layer == 0;
        s->has_final_norm = layer + k == L;
        s->weight_bytes = (uint64_t)k * lb + (s->has_embed ? ebd : 0) + (s->has_final_norm ? nb : 0);
        s->work_bytes = Wd;
        layer += k;
    }

    if (layer < L) {
        char msg[QEMBED_ERROR_MESSAGE_MAX] = "";
        appendf(msg, sizeof msg,
                "placement: the model needs %s (weights %s + workspace %s for %zu batch tokens) "
                "and no allowed device (compute units %s) can hold it; placed layers 0-%d only; "
                "budgets:",
                qe_fmt_bytes(whole, b1, sizeof b1), qe_fmt_bytes(whole - W, b2, sizeof b2),
                qe_fmt_bytes(W, b3, sizeof b3), T, uname, layer - 1);
        for (int oi = 0; oi < n_order; oi++)
            appendf(msg, sizeof msg, " %s %s (%s)", devs->dev[order[oi]].name,
                    qe_fmt_bytes(devs->dev[order[oi]].budget, b4, sizeof b4),
                    devs->dev[order[oi]].budget_src ? devs->dev[order[oi]].budget_src : "given");
        appendf(msg, sizeof msg, "; lower --max-batch-tokens or raise a memory limit");
        QE_FAIL(err, QEMBED_ERR_PLACEMENT, "%s", msg);
    }

    /* Degraded: the most preferred device does not run the whole model. */
    const qe_device *pref = &devs->dev[order[0]];
    if (out->n_segments > 1 || out->seg[0].device != order[0]) {
        out->degraded = 1;
        char how[512] = "";
        for (int i = 0; i < out->n_segments; i++)
            appendf(how, sizeof how, "%slayers %d-%d on %s", i ? ", " : "", out->seg[i].first_layer,
                    out->seg[i].end_layer - 1, out->seg[i].device_name);
        QE_WARN(lg,
                "placement degraded: %s (budget %s, %s) cannot hold the whole model (needs %s: "
                "weights %s + workspace %s for %zu batch tokens)%s%s; running %s",
                pref->name, qe_fmt_bytes(pref->budget, b1, sizeof b1),
                pref->budget_src ? pref->budget_src : "given", qe_fmt_bytes(whole, b2, sizeof b2),
                qe_fmt_bytes(whole - W, b3, sizeof b3), qe_fmt_bytes(W, b4, sizeof b4), T,
                out->seg[0].device != order[0] ? "; falling back: " : "",
                out->seg[0].device != order[0] ? skipped : "", how);
    }

    /* The table, one line per segment (each also logged). */
    char *t = out->table;
    size_t ts = sizeof out->table;
    appendf(t, ts, "placement (compute units %s, %zu batch tokens, layer %s):\n", uname, T,
            qe_fmt_bytes(lb, b1, sizeof b1));
    /* The device column is as wide as the longest name ("vulkan0 (<device name>)"). */
    int dw = 26;
    for (int i = 0; i < out->n_segments; i++)
        if ((int)strlen(out->seg[i].device_name) > dw) dw = (int)strlen(out->seg[i].device_name);
    appendf(t, ts, "  %-7s %-9s %-*s %12s %12s  %s\n", "segment", "layers", dw, "device", "weights",
            "workspace", "holds");
    for (int i = 0; i < out->n_segments; i++) {
        const qe_plan_segment *s = &out->seg[i];
        char layers[24];
        snprintf(layers, sizeof layers, "%d-%d", s->first_layer, s->end_layer - 1);
        /* A backend that holds no embedding (embed_bytes 0) leaves the lookup on the host. */
        const int host_embed = s->has_embed && device_embed(&devs->dev[s->device], cfg, dt) == 0;
        char holds[96] = "";
        appendf(holds, sizeof holds, "%d layer%s%s%s%s", s->end_layer - s->first_layer,
                s->end_layer - s->first_layer == 1 ? "" : "s",
                s->has_embed && !host_embed ? " + embedding" : "", s->has_final_norm ? " + final norm" : "",
                host_embed ? "; embedding lookup on the host" : "");
        appendf(t, ts, "  %-7d %-9s %-*s %12s %12s  %s\n", i, layers, dw, s->device_name,
                qe_fmt_bytes(s->weight_bytes, b1, sizeof b1), qe_fmt_bytes(s->work_bytes, b2, sizeof b2),
                holds);
    }
    /* Devices that hold nothing because they cannot compute, and why. */
    for (int i = 0; i < devs->n; i++)
        if (!devs->dev[i].can_compute)
            appendf(t, ts, "  unused: %s: %s\n", devs->dev[i].name,
                    devs->dev[i].unused_why[0] ? devs->dev[i].unused_why : "no backend in this build");
    /* Log line by line (the callback takes one line each). */
    const char *p = t;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        QE_INFO(lg, "%.*s", len, p);
        p += len + (nl ? 1 : 0);
    }
    return QEMBED_OK;
}
