/* Shared by the model tests (test_model_*.c): small file helpers (test code:
 * failures are fatal), the loader run the way qembed_model_load runs it, and
 * the folders every test gets on its command line. */
#ifndef QE_TEST_MODEL_UTIL_H
#define QE_TEST_MODEL_UTIL_H

#include <stddef.h>

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

/* Checks that the shared tiny model exists and records it in g_shared; with
 * tmp, creates that folder and records it in g_tmp. Exits 1 with a message
 * when shared is missing. */
void model_test_init(const char *prog, const char *shared, const char *tmp);
/* Prints the outcome; returns main's exit status. */
int model_test_done(int failures);

#endif
