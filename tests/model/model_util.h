/* Shared by the model tests (test_model_*.c, test_gguf*.c): small file
 * helpers (test code: failures are fatal), the loader run the way
 * qembed_model_load runs it, the folders every test gets on its command line,
 * the golden cases and the checks the GGUF tests make of a model file. These
 * helpers count no failures themselves (check.h's counter is per program):
 * they return what went wrong and the caller CHECKs it. */
#ifndef QE_TEST_MODEL_UTIL_H
#define QE_TEST_MODEL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "cosine.h"
#include "model/config.h"

extern char g_shared[1024]; /* the shared tiny model */
extern char g_tmp[1024];    /* this test's scratch folder ("" when it has none) */

__attribute__((format(printf, 1, 2), noreturn)) void fatal(const char *fmt, ...);
char *slurp(const char *path, size_t *len);
void spit(const char *path, const void *data, size_t len);
__attribute__((format(printf, 1, 2))) void run_cmd(const char *fmt, ...);
void path_join(char *out, size_t n, const char *a, const char *b);
/* Loads dir the way qembed_model_load does: config, checkpoint, bind. */
qembed_status load_dir(const char *dir, qe_config *cfg, qembed_error *err);

/* The golden cases of a golden JSON file (../shared/golden): each case's
 * text, its token ids and its f32 reference vector (dims floats). */
typedef struct golden_set {
    int n;         /* cases */
    int dims;      /* floats per vector */
    char **texts;  /* [n] */
    float **vec;   /* [n][dims] */
    int32_t **ids; /* [n][n_ids[i]] */
    size_t *n_ids; /* [n] */
} golden_set;
/* Reads path into g; fatal when it cannot be read or has no cases. */
void golden_read(const char *path, golden_set *g);

/* Loads model with exact f32 activations (so that runs differ only in their
 * weights) and 2 threads, and embeds texts[0..n): n x *dims floats, or NULL
 * with err set. *dims gets the model's width. With keep, *keep gets the
 * loaded model (the caller frees it), else it is freed here. */
float *embed_exact(const char *model, char *const *texts, int n, int *dims, qembed_model **keep,
                   qembed_error *err);

/* Writes bytes to path and loads it as a model: NULL when the load fails with
 * a message that names path and holds words, else what is wrong (static
 * text). */
const char *bad_model_problem(const char *path, const void *bytes, size_t n, const char *words);

/* Whether two files hold the same bytes (fatal when one cannot be read). */
int same_bytes(const char *a, const char *b);

/* Offset in a GGUF file's bytes just past a tensor info's name (at its
 * n_dims u32; then ne[] u64, type u32, offset u64); 0 when not found. */
size_t gguf_tensor_info_at(const char *b, size_t n, const char *tname);

/* Checks that the shared tiny model exists and records it in g_shared; with
 * tmp, creates that folder and records it in g_tmp. Exits 1 with a message
 * when shared is missing. */
void model_test_init(const char *prog, const char *shared, const char *tmp);
/* Prints the outcome; returns main's exit status. */
int model_test_done(int failures);

#endif
