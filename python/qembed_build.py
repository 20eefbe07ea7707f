"""The CFFI description of libqembed's public header (API mode).

Only what the Python package calls is declared. Structs end in `...;` so the C
compiler lays them out from include/qembed.h itself: fields appended to the
params/options structs later (a struct-size field, token counts) cannot shift
the ones declared here. Options are always built by the library's
*_default_* constructors, never zero-filled here.

CFFI releases the GIL around every call into the library, so tokenizing and
inference in one thread overlap with Python work in others.
"""
import os
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent


def source_root():
    """The qembed checkout this package builds from: $QEMBED_SOURCE_DIR, else
    the folder above python/."""
    root = Path(os.environ.get("QEMBED_SOURCE_DIR", HERE.parent)).resolve()
    if not (root / "include" / "qembed.h").is_file() or not (root / "CMakeLists.txt").is_file():
        raise SystemExit("qembed: %s is not a qembed checkout (no include/qembed.h or CMakeLists.txt); "
                         "build from the repository (pip install ./python) or set QEMBED_SOURCE_DIR" % root)
    return root


def library_dir():
    """Where libqembed.so is: an existing CMake build tree named by
    $QEMBED_BUILD_DIR (used as it is), else python/build/qembed-cmake, which
    setup.py configures and builds."""
    prebuilt = os.environ.get("QEMBED_BUILD_DIR")
    return Path(prebuilt).resolve() if prebuilt else HERE / "build" / "qembed-cmake"

CDEF = r"""
typedef enum qembed_status {
    QEMBED_OK = 0,
    QEMBED_ERR_INVALID_ARGUMENT = 1,
    QEMBED_ERR_IO = 2,
    QEMBED_ERR_MODEL_FORMAT = 3,
    QEMBED_ERR_UNSUPPORTED = 4,
    QEMBED_ERR_OUT_OF_MEMORY = 5,
    QEMBED_ERR_INVALID_UTF8 = 6,
    QEMBED_ERR_INPUT_TOO_LONG = 7,
    QEMBED_ERR_EMPTY_INPUT = 8,
    QEMBED_ERR_PLACEMENT = 9,
    QEMBED_ERR_NUMERIC = 10,
    QEMBED_ERR_NOT_FOUND = 11,
    QEMBED_ERR_DEVICE = 12,
    QEMBED_ERR_INTERNAL = 13,
    ...
} qembed_status;

typedef struct qembed_error {
    qembed_status code;
    char message[...];
    ...;
} qembed_error;

typedef enum qembed_log_level {
    QEMBED_LOG_DEBUG = 0, QEMBED_LOG_INFO = 1, QEMBED_LOG_WARN = 2, QEMBED_LOG_ERROR = 3, ...
} qembed_log_level;
typedef void (*qembed_log_fn)(qembed_log_level level, const char *line, void *user);

typedef enum qembed_compute_units {
    QEMBED_UNITS_ALL = 0, QEMBED_UNITS_CPU_AND_GPU = 1, QEMBED_UNITS_CPU_AND_NE = 2,
    QEMBED_UNITS_CPU_ONLY = 3, ...
} qembed_compute_units;

typedef struct qembed_tokenizer qembed_tokenizer;
typedef struct qembed_model qembed_model;
typedef struct qembed_ctx qembed_ctx;

const char *qembed_version(void);
const char *qembed_status_str(qembed_status code);
void qembed_free(void *p);

qembed_status qembed_compute_units_parse(const char *s, qembed_compute_units *out,
                                         qembed_error *err);
const char *qembed_compute_units_name(qembed_compute_units u);

typedef struct qembed_model_params {
    qembed_compute_units compute_units;
    int n_threads;
    size_t max_batch_tokens;
    qembed_log_fn log_fn;
    void *log_user;
    qembed_log_level log_level;
    ...;
} qembed_model_params;
qembed_model_params qembed_model_default_params(void);
qembed_status qembed_model_load(const char *path, const qembed_model_params *params,
                                qembed_model **out, qembed_error *err);
void qembed_model_free(qembed_model *model);

typedef struct qembed_model_info {
    char name[...];
    char resolved_path[...];
    char architecture[...];
    char dtype[...];
    int hidden_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    size_t max_tokens;
    uint64_t n_params;
    uint64_t weights_bytes;
    int synthetic;
    ...;
} qembed_model_info;
void qembed_model_get_info(const qembed_model *model, qembed_model_info *info);
const char *qembed_model_placement(const qembed_model *model);

typedef struct qembed_ctx_params {
    int n_threads;
    size_t max_batch_tokens;
    ...;
} qembed_ctx_params;
qembed_ctx_params qembed_ctx_default_params(void);
qembed_status qembed_ctx_create(const qembed_model *model, const qembed_ctx_params *params,
                                qembed_ctx **out, qembed_error *err);
void qembed_ctx_free(qembed_ctx *ctx);
uint64_t qembed_ctx_activation_bytes(const qembed_ctx *ctx);

typedef struct qembed_embed_options {
    const char *instruction;
    int dims;
    int normalize;
    int truncate;
    size_t max_tokens;
    int parse_special;
    ...;
} qembed_embed_options;
qembed_embed_options qembed_embed_default_options(void);
qembed_status qembed_ctx_embed(qembed_ctx *ctx, const char *const *texts, const size_t *lens,
                               size_t n, const qembed_embed_options *opts, float *out,
                               qembed_error *err);
qembed_status qembed_model_tokenize(const qembed_model *model, const char *text, size_t len,
                                    const qembed_embed_options *opts, int32_t **ids,
                                    size_t *n_ids, qembed_error *err);

extern "Python" void _qembed_py_log(qembed_log_level level, const char *line, void *user);
"""


def make_builder(include_dir, library_dir):
    """An FFI builder for qembed._qembed_cffi linked against libqembed.so in
    `library_dir`; the extension finds the library beside itself ($ORIGIN)."""
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(
        "qembed._qembed_cffi",
        '#include "qembed.h"\n',
        include_dirs=[include_dir],
        library_dirs=[library_dir],
        libraries=["qembed"],
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
    )
    return ffibuilder


# The module-level builder that setup.py's cffi_modules names.
ffibuilder = make_builder(str(source_root() / "include"), str(library_dir()))
