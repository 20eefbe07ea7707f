/* The CLI's effective configuration. Precedence, per value:
 *   flag > QEMBED_* variable > PAPR_* variable > default
 * and every value keeps the name of where it came from, so `qembed info` and
 * the logs can say why qembed runs the way it does.
 *
 * The PAPR_* variables are the ones the seed's users already set for the
 * CoreML service this replaces:
 *   PAPR_COREML_MODEL          a path: a model directory or a split directory
 *   PAPR_EMBEDDING_MODEL       a Hugging Face repo id, resolved in the local cache
 *   PAPR_COREML_COMPUTE_UNITS  ALL | CPU_AND_GPU | CPU_AND_NE | CPU_ONLY
 *   PAPR_ENABLE_COREML=false   accelerators off: CPU_ONLY. As an off switch it
 *                              wins over PAPR_COREML_COMPUTE_UNITS, never over
 *                              QEMBED_COMPUTE_UNITS or the flag.
 * An invalid variable is not silently ignored: it is kept in s->error and
 * reported by cli_settings_load_model (and shown by cli_settings_print). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"

#define DEFAULT_MAX_BATCH_TOKENS 16384
#define MAX_BATCH_TOKENS_LIMIT (1u << 24)
#define DEFAULT_REPO "Qwen/Qwen3-Embedding-0.6B"
#define DEFAULT_SYNTH_DIR "./models/synth-0.6b"

const char *const cli_settings_help =
    "Shared options (flag > QEMBED_* variable > PAPR_* variable > default):\n"
    "  -m, --model PATH|REPO       model directory, split directory or HF repo id\n"
    "                              (QEMBED_MODEL, PAPR_COREML_MODEL, PAPR_EMBEDDING_MODEL)\n"
    "      --compute-units U       ALL | CPU_AND_GPU | CPU_AND_NE | CPU_ONLY (default ALL;\n"
    "                              QEMBED_COMPUTE_UNITS, PAPR_COREML_COMPUTE_UNITS,\n"
    "                              PAPR_ENABLE_COREML=false means CPU_ONLY)\n"
    "      --cpu-memory-limit B    CPU memory budget, e.g. 8G (QEMBED_CPU_MEMORY_LIMIT;\n"
    "                              default: available memory)\n"
    "      --gpu-memory-limit B    per-GPU budget (QEMBED_GPU_MEMORY_LIMIT; default: free memory)\n"
    "      --sim-accel-memory B    add the simulated accelerator (a test device computing with\n"
    "                              the CPU kernels) with this budget (QEMBED_SIM_ACCEL_MEMORY)\n"
    "      --max-batch-tokens N    tokens per forward pass; activation memory is planned for it\n"
    "                              (QEMBED_MAX_BATCH_TOKENS; default 16384)\n"
    "  -t, --threads N             worker threads, 0 = every core (QEMBED_THREADS)\n"
    "      --no-verify             skip the SHA-256 check of a split directory's segments\n"
    "                              (order, ranges, sizes still checked; QEMBED_NO_VERIFY=1)\n"
    "  -v                          verbose log (DEBUG)\n"
    "  -q                          quiet log (warnings and errors only)\n"
    "  Byte sizes take K, M, G, T suffixes (powers of 1024).\n";

int cli_parse_bytes(const char *s, uint64_t *out) {
    if (!s) return -1;
    while (isspace((unsigned char)*s)) s++;
    if (!isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end = NULL;
    /* Integer part and an optional fraction ("1.5G"), without locale-dependent strtod. */
    unsigned long long whole = strtoull(s, &end, 10);
    if (errno == ERANGE) return -1;
    double frac = 0.0, scale = 0.1;
    if (*end == '.') {
        end++;
        if (!isdigit((unsigned char)*end)) return -1;
        while (isdigit((unsigned char)*end)) {
            frac += (*end - '0') * scale;
            scale /= 10.0;
            end++;
        }
    }
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
        case 'K':
            mul = 1ull << 10;
            end++;
            break;
        case 'M':
            mul = 1ull << 20;
            end++;
            break;
        case 'G':
            mul = 1ull << 30;
            end++;
            break;
        case 'T':
            mul = 1ull << 40;
            end++;
            break;
        default: break;
    }
    /* Accept "3G", "3GB", "3GiB", "1024B". */
    if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    if (mul > 1 && whole > UINT64_MAX / mul) return -1;
    if (mul == 1 && frac != 0.0) return -1; /* a fraction of a byte */
    *out = (uint64_t)whole * mul + (uint64_t)(frac * (double)mul);
    return 0;
}

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The local Hugging Face cache's folder for a repo, as the hub library lays
 * it out; only its existence matters here (the library resolves the
 * snapshot). */
static int hf_cache_has(const char *repo) {
    char base[1024];
    const char *hf = getenv("HF_HOME"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    const char *hub = getenv("HF_HUB_CACHE");
    if (hub && *hub)
        snprintf(base, sizeof base, "%s", hub);
    else if (hf && *hf)
        snprintf(base, sizeof base, "%s/hub", hf);
    else if (xdg && *xdg)
        snprintf(base, sizeof base, "%s/huggingface/hub", xdg);
    else if (home && *home)
        snprintf(base, sizeof base, "%s/.cache/huggingface/hub", home);
    else
        return 0;
    char folder[512] = "models--";
    size_t n = strlen(folder);
    for (const char *c = repo; *c && n + 3 < sizeof folder; c++) {
        if (*c == '/') {
            folder[n++] = '-';
            folder[n++] = '-';
        } else {
            folder[n++] = *c;
        }
    }
    folder[n] = '\0';
    char path[1600];
    snprintf(path, sizeof path, "%s/%s/snapshots", base, folder);
    return is_dir(path);
}

static void set_error(cli_settings *s, const char *fmt, const char *name, const char *val) {
    if (s->error[0]) return; /* the first one is the one to fix first */
    snprintf(s->error, sizeof s->error, fmt, name, val);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void env_bytes(cli_settings *s, const char *name, uint64_t *dst, const char **src) {
    const char *v = env(name);
    if (!v) return;
    if (cli_parse_bytes(v, dst) == 0)
        *src = name;
    else
        set_error(s, "%s=%s is not a byte size (e.g. 512M, 3G)", name, v);
}

static int is_false(const char *v) {
    return !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off");
}

void cli_settings_init(cli_settings *s) {
    memset(s, 0, sizeof *s);
    s->units = QEMBED_UNITS_ALL;
    s->units_src = "default";
    s->cpu_limit_src = "default";
    s->gpu_limit_src = "default";
    s->sim_accel_src = "default";
    s->max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS;
    s->max_batch_src = "default";
    s->threads_src = "default";
    s->verify_src = "default";

    /* Model: QEMBED_MODEL > PAPR_COREML_MODEL (path) > PAPR_EMBEDDING_MODEL
     * (repo id) > the real model in the HF cache > the generated synthetic one. */
    const char *v;
    if ((v = env("QEMBED_MODEL"))) {
        snprintf(s->model, sizeof s->model, "%s", v);
        s->model_src = "QEMBED_MODEL";
    } else if ((v = env("PAPR_COREML_MODEL"))) {
        snprintf(s->model, sizeof s->model, "%s", v);
        s->model_src = "PAPR_COREML_MODEL";
    } else if ((v = env("PAPR_EMBEDDING_MODEL"))) {
        snprintf(s->model, sizeof s->model, "%s", v);
        s->model_src = "PAPR_EMBEDDING_MODEL (repo id, Hugging Face cache)";
    } else if (hf_cache_has(DEFAULT_REPO)) {
        snprintf(s->model, sizeof s->model, "%s", DEFAULT_REPO);
        s->model_src = "default (found in the Hugging Face cache)";
    } else if (is_dir(DEFAULT_SYNTH_DIR)) {
        snprintf(s->model, sizeof s->model, "%s", DEFAULT_SYNTH_DIR);
        s->model_src = "default (generated synthetic model: random weights)";
    } else {
        s->model_src = "none";
    }

    /* Compute units. */
    if ((v = env("QEMBED_COMPUTE_UNITS"))) {
        if (qembed_compute_units_parse(v, &s->units, NULL) == QEMBED_OK)
            s->units_src = "QEMBED_COMPUTE_UNITS";
        else
            set_error(s, "%s=%s is not valid (valid: ALL, CPU_AND_GPU, CPU_AND_NE, CPU_ONLY)",
                      "QEMBED_COMPUTE_UNITS", v);
    } else if ((v = env("PAPR_ENABLE_COREML")) && is_false(v)) {
        s->units = QEMBED_UNITS_CPU_ONLY;
        s->units_src = "PAPR_ENABLE_COREML=false";
    } else if ((v = env("PAPR_COREML_COMPUTE_UNITS"))) {
        if (qembed_compute_units_parse(v, &s->units, NULL) == QEMBED_OK)
            s->units_src = "PAPR_COREML_COMPUTE_UNITS";
        else
            set_error(s, "%s=%s is not valid (valid: ALL, CPU_AND_GPU, CPU_AND_NE, CPU_ONLY)",
                      "PAPR_COREML_COMPUTE_UNITS", v);
    }

    env_bytes(s, "QEMBED_CPU_MEMORY_LIMIT", &s->cpu_memory_limit, &s->cpu_limit_src);
    env_bytes(s, "QEMBED_GPU_MEMORY_LIMIT", &s->gpu_memory_limit, &s->gpu_limit_src);
    env_bytes(s, "QEMBED_SIM_ACCEL_MEMORY", &s->sim_accel_memory, &s->sim_accel_src);

    long n;
    if ((v = env("QEMBED_MAX_BATCH_TOKENS"))) {
        if (cli_parse_long(v, 1, MAX_BATCH_TOKENS_LIMIT, &n) == 0) {
            s->max_batch_tokens = (size_t)n;
            s->max_batch_src = "QEMBED_MAX_BATCH_TOKENS";
        } else {
            set_error(s, "%s=%s is not a token count (1 to 16777216)", "QEMBED_MAX_BATCH_TOKENS", v);
        }
    }
    if ((v = env("QEMBED_NO_VERIFY"))) {
        s->no_verify = !is_false(v);
        s->verify_src = "QEMBED_NO_VERIFY";
    }
    if ((v = env("QEMBED_THREADS"))) {
        if (cli_parse_long(v, 0, 4096, &n) == 0) {
            s->n_threads = (int)n;
            s->threads_src = "QEMBED_THREADS";
        } else {
            set_error(s, "%s=%s is not a thread count (0 = every core, up to 4096)", "QEMBED_THREADS", v);
        }
    }
}

/* The shared options, parsed by args.c for every command. Long-only keys are
 * 1000 and up so they never meet a command's own (256..999). */
enum {
    OPT_COMPUTE_UNITS = 1000,
    OPT_CPU_LIMIT,
    OPT_GPU_LIMIT,
    OPT_SIM_ACCEL,
    OPT_MAX_BATCH,
    OPT_NO_VERIFY,
};

const cli_optdef cli_settings_opts[] = {
    {"model", 'm', 1},
    {"compute-units", OPT_COMPUTE_UNITS, 1},
    {"cpu-memory-limit", OPT_CPU_LIMIT, 1},
    {"gpu-memory-limit", OPT_GPU_LIMIT, 1},
    {"sim-accel-memory", OPT_SIM_ACCEL, 1},
    {"max-batch-tokens", OPT_MAX_BATCH, 1},
    {"threads", 't', 1},
    {"no-verify", OPT_NO_VERIFY, 0},
    {NULL, 'v', 0},
    {NULL, 'q', 0},
    {NULL, 0, 0},
};

int cli_settings_set(cli_settings *s, int key, const char *v) {
    long n;
    switch (key) {
        case 'v': s->verbose = 1; return 0;
        case 'q': s->quiet = 1; return 0;
        case OPT_NO_VERIFY:
            s->no_verify = 1;
            s->verify_src = "--no-verify";
            return 0;
        case 'm':
            if (!*v) {
                fprintf(stderr, "qembed: --model needs a directory or a repo id\n");
                return -1;
            }
            snprintf(s->model, sizeof s->model, "%s", v);
            s->model_src = "--model";
            return 0;
        case OPT_COMPUTE_UNITS: {
            qembed_error e;
            if (qembed_compute_units_parse(v, &s->units, &e) != QEMBED_OK) {
                fprintf(stderr, "qembed: --compute-units: %s\n", e.message);
                return -1;
            }
            s->units_src = "--compute-units";
            return 0;
        }
        case OPT_CPU_LIMIT:
        case OPT_GPU_LIMIT:
        case OPT_SIM_ACCEL: {
            const char *flag = key == OPT_CPU_LIMIT   ? "--cpu-memory-limit"
                               : key == OPT_GPU_LIMIT ? "--gpu-memory-limit"
                                                      : "--sim-accel-memory";
            uint64_t b;
            if (cli_parse_bytes(v, &b) != 0) {
                fprintf(stderr, "qembed: %s: '%s' is not a byte size (e.g. 512M, 3G)\n", flag, v);
                return -1;
            }
            if (key == OPT_CPU_LIMIT)
                s->cpu_memory_limit = b;
            else if (key == OPT_GPU_LIMIT)
                s->gpu_memory_limit = b;
            else
                s->sim_accel_memory = b;
            *(key == OPT_CPU_LIMIT   ? &s->cpu_limit_src
              : key == OPT_GPU_LIMIT ? &s->gpu_limit_src
                                     : &s->sim_accel_src) = flag;
            return 0;
        }
        case OPT_MAX_BATCH:
            if (cli_parse_long(v, 1, MAX_BATCH_TOKENS_LIMIT, &n) != 0) {
                fprintf(stderr, "qembed: --max-batch-tokens: '%s' is not a token count (1 to 16777216)\n", v);
                return -1;
            }
            s->max_batch_tokens = (size_t)n;
            s->max_batch_src = "--max-batch-tokens";
            return 0;
        case 't':
            if (cli_parse_long(v, 0, 4096, &n) != 0) {
                fprintf(stderr, "qembed: --threads: '%s' is not a thread count (0 = every core)\n", v);
                return -1;
            }
            s->n_threads = (int)n;
            s->threads_src = "--threads";
            return 0;
        default: return -1;
    }
}

static void log_stderr(qembed_log_level level, const char *line, void *user) {
    (void)user;
    static const char *const tag[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    fprintf(stderr, "qembed %s: %s\n", tag[level >= 0 && level <= 3 ? level : 1], line);
}

qembed_model_params cli_settings_model_params(const cli_settings *s) {
    qembed_model_params p = qembed_model_default_params();
    p.compute_units = s->units;
    p.n_threads = s->n_threads;
    p.max_batch_tokens = s->max_batch_tokens;
    p.cpu_memory_limit = s->cpu_memory_limit;
    p.gpu_memory_limit = s->gpu_memory_limit;
    p.sim_accel_memory = s->sim_accel_memory;
    p.no_verify = s->no_verify;
    p.log_fn = log_stderr;
    p.log_user = NULL;
    p.log_level = s->verbose ? QEMBED_LOG_DEBUG : s->quiet ? QEMBED_LOG_WARN : QEMBED_LOG_INFO;
    return p;
}

qembed_model *cli_settings_load_model(const cli_settings *s, const qembed_model_params *p) {
    if (s->error[0]) {
        fprintf(stderr, "qembed: error: %s\n", s->error);
        return NULL;
    }
    if (!s->model[0]) {
        fprintf(stderr,
                "qembed: error: no model: pass -m/--model DIR|REPO or set QEMBED_MODEL (none in the "
                "Hugging Face cache as %s: download it with: qembed pull %s; and no %s: generate one "
                "with: qembed-synth --preset 0.6b -o %s)\n",
                DEFAULT_REPO, DEFAULT_REPO, DEFAULT_SYNTH_DIR, DEFAULT_SYNTH_DIR);
        return NULL;
    }
    qembed_model_params mp = p ? *p : cli_settings_model_params(s);
    qembed_model *m = NULL;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status st = qembed_model_load(s->model, &mp, &m, &e);
    if (st != QEMBED_OK) {
        fprintf(stderr, "qembed: error: %s: %s\n", qembed_status_str(st),
                e.message[0] ? e.message : "(no detail)");
        return NULL;
    }
    return m;
}

static const char *bytes_str(uint64_t b, char *buf, size_t n, const char *zero) {
    if (!b) return zero;
    static const char *const u[] = {"B", "K", "M", "G", "T"};
    int i = 0;
    uint64_t v = b;
    while (i < 4 && v % 1024 == 0 && v >= 1024) {
        v /= 1024;
        i++;
    }
    if (i)
        snprintf(buf, n, "%llu%s (%llu bytes)", (unsigned long long)v, u[i], (unsigned long long)b);
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)b);
    return buf;
}

void cli_settings_print(const cli_settings *s, FILE *f) {
    char b[64];
    fprintf(f, "configuration (flag > QEMBED_* > PAPR_* > default):\n");
    fprintf(f, "  %-18s %-40s (%s)\n", "model", s->model[0] ? s->model : "(none)", s->model_src);
    fprintf(f, "  %-18s %-40s (%s)\n", "compute units", qembed_compute_units_name(s->units), s->units_src);
    fprintf(f, "  %-18s %-40s (%s)\n", "cpu memory limit",
            bytes_str(s->cpu_memory_limit, b, sizeof b, "available memory"), s->cpu_limit_src);
    fprintf(f, "  %-18s %-40s (%s)\n", "gpu memory limit",
            bytes_str(s->gpu_memory_limit, b, sizeof b, "free memory per GPU"), s->gpu_limit_src);
    fprintf(f, "  %-18s %-40s (%s)\n", "sim-accel memory",
            bytes_str(s->sim_accel_memory, b, sizeof b, "none (no simulated accelerator)"), s->sim_accel_src);
    snprintf(b, sizeof b, "%zu", s->max_batch_tokens);
    fprintf(f, "  %-18s %-40s (%s)\n", "max batch tokens", b, s->max_batch_src);
    if (s->n_threads)
        snprintf(b, sizeof b, "%d", s->n_threads);
    else
        snprintf(b, sizeof b, "0 (every core)");
    fprintf(f, "  %-18s %-40s (%s)\n", "threads", b, s->threads_src);
    fprintf(f, "  %-18s %-40s (%s)\n", "verify segments",
            s->no_verify ? "no (SHA-256 skipped)" : "yes (SHA-256)", s->verify_src);
    if (s->error[0]) fprintf(f, "  error: %s\n", s->error);
}
