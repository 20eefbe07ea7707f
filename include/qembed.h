/*
 * qembed: text embeddings with the Qwen3-Embedding family, in C11.
 *
 * This header is the whole public contract. What is not here is not API.
 *
 * Conventions
 *  - Opaque handles with create/free pairs; every *_free(NULL) is a no-op.
 *  - Every call that can fail returns a qembed_status and, when `err` is not
 *    NULL, fills it with the code and a one-line human message naming what was
 *    wrong and where (file, tensor, field, input index, byte offset).
 *  - The library never exits, aborts or prints on its own: logging goes through
 *    the optional log callback in the params structs.
 *  - Params and options structs come from their *_default_*() constructor and
 *    grow safely: see "Structs that grow" below. Fields are only ever appended.
 *  - Status codes are never renumbered.
 *
 * Threading
 *  - qembed_model and qembed_tokenizer are immutable after load: any number of
 *    threads may use one at once.
 *  - qembed_ctx holds the per-worker state (activations, thread pool): one
 *    thread at a time per ctx; create one ctx per worker thread.
 */
#ifndef QEMBED_H
#define QEMBED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QEMBED_VERSION_MAJOR 0
#define QEMBED_VERSION_MINOR 1
#define QEMBED_VERSION_PATCH 0
#define QEMBED_VERSION_STRING "0.1.0"
#define QEMBED_VERSION_NUMBER \
    (QEMBED_VERSION_MAJOR * 1000000 + QEMBED_VERSION_MINOR * 1000 + QEMBED_VERSION_PATCH)

#if defined(_WIN32)
#define QEMBED_API
#else
#define QEMBED_API __attribute__((visibility("default")))
#endif

/* ---- Structs that grow ----
 * Every params/options struct (qembed_encode_options, qembed_model_params,
 * qembed_split_params, qembed_ctx_params, qembed_embed_options) starts with
 * `size`: the sizeof the caller was compiled with. The *_default_*()
 * constructors are static inline below, so they run with the caller's header:
 * they set `size` to the caller's sizeof and call qembed_params_init, which
 * fills in the library's defaults for those bytes only (a constructor
 * exported by value would write a newer, larger struct into an older
 * caller's smaller one). The library reads only `size` bytes of a struct and
 * gives the fields appended since their defaults, so a program built against
 * an older header keeps working with a newer library. Any other size (0 or
 * garbage: a struct not made by its constructor; larger than the library's:
 * a newer header than the library) is QEMBED_ERR_INVALID_ARGUMENT naming the
 * struct. Fields are only appended; a release that appends one keeps its
 * previous size among the sizes the library accepts. */
typedef enum qembed_params_kind {
    QEMBED_PARAMS_ENCODE = 0, /* qembed_encode_options */
    QEMBED_PARAMS_MODEL = 1,  /* qembed_model_params */
    QEMBED_PARAMS_SPLIT = 2,  /* qembed_split_params */
    QEMBED_PARAMS_CTX = 3,    /* qembed_ctx_params */
    QEMBED_PARAMS_EMBED = 4   /* qembed_embed_options */
} qembed_params_kind;

/* Fills the first `size` bytes of *params (a struct of that kind) with the
 * library's defaults and sets params->size = size. */
QEMBED_API void qembed_params_init(qembed_params_kind kind, void *params, size_t size);

#define QEMBED_DEFAULTS_(type, kind)                \
    {                                               \
        type v_;                                    \
        qembed_params_init((kind), &v_, sizeof v_); \
        return v_;                                  \
    }

/* Run-time version, to compare against the macros the caller compiled with. */
QEMBED_API const char *qembed_version(void);
QEMBED_API int qembed_version_number(void);

/* ------------------------------------------------------------------------- */
/* Status codes and errors                                                   */
/* ------------------------------------------------------------------------- */

typedef enum qembed_status {
    QEMBED_OK = 0,
    QEMBED_ERR_INVALID_ARGUMENT = 1, /* a caller's argument or option is invalid */
    QEMBED_ERR_IO = 2,               /* a file is missing or cannot be read/written */
    QEMBED_ERR_MODEL_FORMAT = 3,     /* a model file is malformed or inconsistent */
    QEMBED_ERR_UNSUPPORTED = 4,      /* valid but not supported (architecture, dtype) */
    QEMBED_ERR_OUT_OF_MEMORY = 5,
    QEMBED_ERR_INVALID_UTF8 = 6,   /* input text is not valid UTF-8 */
    QEMBED_ERR_INPUT_TOO_LONG = 7, /* more tokens than the configured maximum */
    QEMBED_ERR_EMPTY_INPUT = 8,    /* an empty text or an empty batch */
    QEMBED_ERR_PLACEMENT = 9,      /* no device (or split) can hold the model */
    QEMBED_ERR_NUMERIC = 10,       /* a result vector is not finite or has zero norm */
    QEMBED_ERR_NOT_FOUND = 11,     /* a repo id or token that does not exist */
    QEMBED_ERR_DEVICE = 12,        /* a device failed at run time */
    QEMBED_ERR_INTERNAL = 13       /* a bug in qembed: please report it */
} qembed_status;

#define QEMBED_ERROR_MESSAGE_MAX 512

typedef struct qembed_error {
    qembed_status code;
    char message[QEMBED_ERROR_MESSAGE_MAX];
} qembed_error;

/* Fixed text for a code ("invalid argument", ...); never NULL. */
QEMBED_API const char *qembed_status_str(qembed_status code);

/* ------------------------------------------------------------------------- */
/* Logging                                                                   */
/* ------------------------------------------------------------------------- */

typedef enum qembed_log_level {
    QEMBED_LOG_DEBUG = 0,
    QEMBED_LOG_INFO = 1,
    QEMBED_LOG_WARN = 2,
    QEMBED_LOG_ERROR = 3
} qembed_log_level;

/* Called with one line (no trailing newline). May be called from any thread
 * that uses the handle the callback was given to. */
typedef void (*qembed_log_fn)(qembed_log_level level, const char *line, void *user);

/* ------------------------------------------------------------------------- */
/* Tokenizer (usable alone)                                                  */
/* ------------------------------------------------------------------------- */

typedef struct qembed_tokenizer qembed_tokenizer;

/* `path` is a tokenizer.json file or a directory holding tokenizer.json (and
 * optionally tokenizer_config.json). */
QEMBED_API qembed_status qembed_tokenizer_load(const char *path, qembed_tokenizer **out, qembed_error *err);
QEMBED_API void qembed_tokenizer_free(qembed_tokenizer *tok);

typedef struct qembed_encode_options {
    size_t size;            /* sizeof, set by qembed_encode_default_options() ("Structs that grow") */
    int add_special_tokens; /* apply the post-processor (appends <|endoftext|> for Qwen3-Embedding); default 1 */
    int parse_special;      /* match added tokens written literally in the text; default 1 (as the
                               reference does). A server sets 0 for untrusted input: then
                               "<|endoftext|>" in the text is tokenized as plain text. */
} qembed_encode_options;

static inline qembed_encode_options qembed_encode_default_options(void)
    QEMBED_DEFAULTS_(qembed_encode_options, QEMBED_PARAMS_ENCODE)

    /* Encodes `len` bytes of UTF-8 `text` (len may be 0). On success *ids is a
 * malloc'ed array of *n_ids ids owned by the caller (free with qembed_free).
 * Invalid UTF-8 gives QEMBED_ERR_INVALID_UTF8 with the byte offset. */
    QEMBED_API qembed_status qembed_tokenizer_encode(const qembed_tokenizer *tok, const char *text,
                                                     size_t len, const qembed_encode_options *opts,
                                                     int32_t **ids, size_t *n_ids, qembed_error *err);

/* Decodes ids to UTF-8 (byte-level). Sequences that do not form valid UTF-8
 * are replaced by U+FFFD, as the reference decoder does. *text is
 * NUL-terminated, malloc'ed, owned by the caller (free with qembed_free). */
QEMBED_API qembed_status qembed_tokenizer_decode(const qembed_tokenizer *tok, const int32_t *ids,
                                                 size_t n_ids, int skip_special_tokens, char **text,
                                                 size_t *len, qembed_error *err);

/* Id of a token string ("<|endoftext|>"), or -1 when absent. */
QEMBED_API int32_t qembed_tokenizer_token_to_id(const qembed_tokenizer *tok, const char *token);
/* Number of ids (vocabulary plus added tokens). */
QEMBED_API size_t qembed_tokenizer_n_vocab(const qembed_tokenizer *tok);

/* Frees memory returned by qembed (ids, decoded text, strings). */
QEMBED_API void qembed_free(void *p);

/* ------------------------------------------------------------------------- */
/* Model                                                                     */
/* ------------------------------------------------------------------------- */

typedef struct qembed_model qembed_model;

typedef enum qembed_compute_units {
    QEMBED_UNITS_ALL = 0,
    QEMBED_UNITS_CPU_AND_GPU = 1,
    QEMBED_UNITS_CPU_AND_NE = 2,
    QEMBED_UNITS_CPU_ONLY = 3
} qembed_compute_units;

/* Parses "ALL", "CPU_AND_GPU", "CPU_AND_NE", "CPU_ONLY" (case-insensitive). */
QEMBED_API qembed_status qembed_compute_units_parse(const char *s, qembed_compute_units *out,
                                                    qembed_error *err);
QEMBED_API const char *qembed_compute_units_name(qembed_compute_units u);

typedef struct qembed_model_params {
    size_t size;                        /* sizeof, set by qembed_model_default_params() */
    qembed_compute_units compute_units; /* default ALL */
    int n_threads;                      /* default 0: every core */
    size_t max_batch_tokens;            /* activation memory is planned for this; default 16384 */
    size_t max_tokens;                  /* default max input length; 0 = 8192 capped by the model */
    uint64_t cpu_memory_limit;          /* bytes; 0 = the machine's available memory */
    uint64_t gpu_memory_limit;          /* bytes per GPU; 0 = the device's free memory */
    uint64_t sim_accel_memory;          /* TEST HOOK, not for production: bytes of the simulated
                                           accelerator (a test device that computes with the CPU
                                           kernels); 0 = none. Kept here, not moved to the test
                                           section below, because fields never move (append-only). */
    int exact;                          /* 1: f32 activations everywhere (slower, the reference);
                                           0 (default): bf16 activations in the matrix products */
    int warmup;                         /* run one warm-up inference at load; default 0 */
    qembed_log_fn log_fn;               /* NULL: no logging */
    void *log_user;
    qembed_log_level log_level; /* default INFO */
    int no_verify;              /* 1: skip the SHA-256 check of a split directory's
                                           segments (order, ranges and sizes are still checked);
                                           default 0: verify */
} qembed_model_params;

static inline qembed_model_params qembed_model_default_params(void)
    QEMBED_DEFAULTS_(qembed_model_params, QEMBED_PARAMS_MODEL)

    /* `path` is a Hugging Face model directory, a split directory (manifest.json,
 * see `qembed split`), or a repo id ("Qwen/Qwen3-Embedding-0.6B") resolved in
 * the local Hugging Face cache ($HF_HOME, else ~/.cache/huggingface). Weights
 * are memory-mapped, validated against config.json, then placed by the planner
 * before any is touched. */
    QEMBED_API qembed_status qembed_model_load(const char *path, const qembed_model_params *params,
                                               qembed_model **out, qembed_error *err);
QEMBED_API void qembed_model_free(qembed_model *model);

typedef struct qembed_model_info {
    char name[256];           /* the path or repo id as given */
    char resolved_path[1024]; /* the directory actually loaded */
    char architecture[64];
    char dtype[16]; /* the embedding's: "bf16", "f16", "f32", or "q8_0" (a Q8_0 GGUF) */
    int hidden_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    size_t max_tokens; /* effective default input limit */
    uint64_t n_params;
    uint64_t weights_bytes;
    int synthetic; /* 1 when synth_manifest.json says random weights */
} qembed_model_info;

QEMBED_API void qembed_model_get_info(const qembed_model *model, qembed_model_info *info);
/* The model's tokenizer; owned by the model. */
QEMBED_API const qembed_tokenizer *qembed_model_tokenizer(const qembed_model *model);
/* A human-readable placement table (segments, layers, devices, bytes), one
 * line per segment; owned by the model. */
QEMBED_API const char *qembed_model_placement(const qembed_model *model);

/* ---- Split directories (`qembed split`) ---- */

typedef struct qembed_split_params {
    size_t size;                /* sizeof, set by qembed_split_default_params() */
    int max_segments;           /* cut into this many segments of contiguous layers, balanced by
                                   bytes (capped at the number of layers) ... */
    uint64_t max_segment_bytes; /* ... or (when max_segments is 0) as few segments as keep each
                                   file at most this size */
    qembed_log_fn log_fn;       /* NULL: no logging */
    void *log_user;
    qembed_log_level log_level; /* default INFO */
} qembed_split_params;

static inline qembed_split_params qembed_split_default_params(void)
    QEMBED_DEFAULTS_(qembed_split_params, QEMBED_PARAMS_SPLIT)

    /* Writes `out_dir` (created if absent; must not already hold a manifest.json):
 * self-contained safetensors segment files of contiguous layers (the first
 * also holds the token embedding, the last the final norm; tensor names as in
 * the source), manifest.json (model config, segment order, layer ranges,
 * sizes, SHA-256 of every file) and copies of config.json and the tokenizer
 * files. `model` is anything qembed_model_load accepts. */
    QEMBED_API qembed_status qembed_model_split(const char *model, const char *out_dir,
                                                const qembed_split_params *params, qembed_error *err);

/* Writes `model` (anything qembed_model_load accepts) as one GGUF v3 file
 * `out`: qwen3 metadata, the tokenizer (tokenizer.ggml.*), and the weights in
 * `type`: "q8_0", "bf16", "f16" or "f32" (norm vectors stay f32), or
 * "q4_k_m", "q5_k_m", "q6_k", "q4_0", "q5_0": llama.cpp's per-tensor mixture
 * of its 4-6 bit block types. The file loads as a model anywhere a model is
 * accepted. */
QEMBED_API qembed_status qembed_model_quantize(const char *model, const char *out, const char *type,
                                               qembed_error *err);

/* ------------------------------------------------------------------------- */
/* Context and embedding                                                     */
/* ------------------------------------------------------------------------- */

typedef struct qembed_ctx qembed_ctx;

typedef struct qembed_ctx_params {
    size_t size;             /* sizeof, set by qembed_ctx_default_params() */
    int n_threads;           /* 0: the model's n_threads */
    size_t max_batch_tokens; /* 0: the model's max_batch_tokens */
} qembed_ctx_params;

static inline qembed_ctx_params qembed_ctx_default_params(void)
    QEMBED_DEFAULTS_(qembed_ctx_params, QEMBED_PARAMS_CTX) QEMBED_API qembed_status
    qembed_ctx_create(const qembed_model *model, const qembed_ctx_params *params, qembed_ctx **out,
                      qembed_error *err);
QEMBED_API void qembed_ctx_free(qembed_ctx *ctx);
/* The bytes of activation memory the context planned at creation (for its
 * max_batch_tokens and threads): the most a forward pass adds to the weights,
 * however long its inputs (attention runs in tiles; nothing is n x n). */
QEMBED_API uint64_t qembed_ctx_activation_bytes(const qembed_ctx *ctx);

typedef struct qembed_embed_options {
    size_t size;             /* sizeof, set by qembed_embed_default_options() */
    const char *instruction; /* non-NULL: texts become "Instruct: {instruction}\nQuery:{text}" */
    int dims;                /* 0: hidden size; else 32..hidden (Matryoshka: slice, re-normalise) */
    int normalize;           /* default 1: L2-normalise */
    int truncate;            /* default 0: longer input is an error; 1: keep the first tokens */
    size_t max_tokens;       /* 0: the model's default; counts the appended <|endoftext|> */
    int parse_special;       /* default 1, as qembed_encode_options */
    /* Appended fields (callers that only set the ones above are unaffected). */
    int truncation_direction; /* with truncate: QEMBED_TRUNCATE_RIGHT (default) keeps the first
                                 tokens, QEMBED_TRUNCATE_LEFT the last; <|endoftext|> stays last */
    size_t *n_tokens_out;     /* NULL, or n entries: each input's token count before truncation
                                 (with <|endoftext|>); also set for the input that failed with
                                 QEMBED_ERR_INPUT_TOO_LONG */
} qembed_embed_options;

enum { QEMBED_TRUNCATE_RIGHT = 0, QEMBED_TRUNCATE_LEFT = 1 };

static inline qembed_embed_options qembed_embed_default_options(void)
    QEMBED_DEFAULTS_(qembed_embed_options, QEMBED_PARAMS_EMBED)

    /* Embeds n texts (lens may be NULL for NUL-terminated texts). `out` holds
 * n * dims floats, row i for text i. A batch of mixed lengths costs what its
 * tokens cost (no padding) and gives the same vectors as one text at a time. */
    QEMBED_API qembed_status
    qembed_ctx_embed(qembed_ctx *ctx, const char *const *texts, const size_t *lens, size_t n,
                     const qembed_embed_options *opts, float *out, qembed_error *err);

/* Embeds already-tokenized inputs as they are (no instruction, nothing
 * appended): the caller's ids are the model's input. */
QEMBED_API qembed_status qembed_ctx_embed_tokens(qembed_ctx *ctx, const int32_t *const *ids,
                                                 const size_t *n_ids, size_t n,
                                                 const qembed_embed_options *opts, float *out,
                                                 qembed_error *err);

/* Tokenizes as qembed_ctx_embed would (instruction, post-processor,
 * truncation) without running the model. *ids is owned by the caller.
 * opts->max_tokens may exceed the model's positions here (no model runs). */
QEMBED_API qembed_status qembed_model_tokenize(const qembed_model *model, const char *text, size_t len,
                                               const qembed_embed_options *opts, int32_t **ids, size_t *n_ids,
                                               qembed_error *err);

/* ------------------------------------------------------------------------- */
/* Test and bench hooks: NOT part of the stable contract                     */
/* ------------------------------------------------------------------------- */
/* What only tests and benchmarks need, kept apart from user options as zstd
 * keeps its ZSTD_STATIC_LINKING_ONLY section: visible only to a caller that
 * defines QEMBED_TEST_AND_BENCH_API before including this header, and free to
 * change or go between releases. The hooks that live elsewhere because a
 * struct's fields never move (append-only ABI) are listed here too:
 *  - qembed_model_params.sim_accel_memory: the simulated accelerator, a test
 *    device (CLI --sim-accel-memory, QEMBED_SIM_ACCEL_MEMORY);
 *  - the QEMBED_ISA environment variable: caps the CPU kernels' instruction
 *    set (scalar, avx2, avx512, avx512bf16), for tests of every kernel family
 *    on one machine and for the peak measurement below. */
#ifdef QEMBED_TEST_AND_BENCH_API

/* This machine's limits, measured by short microbenchmarks of the same
 * instructions the CPU matrix products use, over n_threads threads. A bench
 * reports its achieved GFLOP/s as a fraction of compute_gflops. On a machine
 * shared with other work the figures are lower bounds of the true peaks. */
typedef struct qembed_machine_peak {
    char isa[32]; /* kernel family in use: "avx512bf16", "avx512", "avx2", "scalar"
                                      (QEMBED_ISA caps it) */
    int n_threads;
    double compute_gflops;         /* peak of the instructions the products run in the requested
                                      mode: vdpbf16ps for bf16 mode on AVX512_BF16, else f32 FMA */
    double f32_fma_gflops;         /* widest f32 FMA (zmm or ymm) */
    double bf16_dot_gflops;        /* zmm vdpbf16ps; 0 when the CPU lacks AVX512_BF16 */
    double dram_read_gbs;          /* reading 4x the L3 (256 MiB-2 GiB), 4 KiB pages (1e9 bytes/s) */
    double dram_read_hugepage_gbs; /* the same with transparent huge pages advised */
} qembed_machine_peak;

/* Takes about 0.5 s. n_threads <= 0: every core. exact: the mode whose
 * instructions count for compute_gflops (as qembed_model_params.exact). */
QEMBED_API qembed_status qembed_measure_peak(int n_threads, int exact, qembed_machine_peak *out,
                                             qembed_error *err);
#endif /* QEMBED_TEST_AND_BENCH_API */

#ifdef __cplusplus
}
#endif
#endif /* QEMBED_H */
