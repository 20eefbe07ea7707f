/* A set of memory-mapped safetensors files (one file, a sharded index, or the
 * segments of a split directory) and the tensors their headers declare.
 * Headers are validated before any tensor is used: dtype known, shape sane,
 * byte range inside the file and consistent with dtype x shape. */
#ifndef QE_CHECKPOINT_H
#define QE_CHECKPOINT_H

#include "common/error.h"
#include "model/tensor.h"

typedef struct qe_checkpoint qe_checkpoint;

/* Opens one .safetensors file and adds its tensors. */
qembed_status qe_checkpoint_add_file(qe_checkpoint *ck, const char *path, qembed_error *err);
qe_checkpoint *qe_checkpoint_new(void);
void qe_checkpoint_free(qe_checkpoint *ck);

/* Opens a model directory: model.safetensors or model.safetensors.index.json. */
qembed_status qe_checkpoint_open_dir(const char *dir, qe_checkpoint **out, qembed_error *err);

/* Finds a tensor by name, trying the name as given and with the "model."
 * prefix (checkpoints differ). NULL when absent. */
const qe_tensor *qe_checkpoint_find(const qe_checkpoint *ck, const char *name);

size_t qe_checkpoint_n_tensors(const qe_checkpoint *ck);
const qe_tensor *qe_checkpoint_tensor(const qe_checkpoint *ck, size_t i);
/* Which file a tensor came from (for error messages). */
const char *qe_checkpoint_file_of(const qe_checkpoint *ck, const qe_tensor *t);

#endif
