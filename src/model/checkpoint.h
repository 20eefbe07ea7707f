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

/* ---- additions (model loading) ---- */

/* The file (model.safetensors or the index.json) or directory the checkpoint
 * was opened from, for messages. Never NULL. */
const char *qe_checkpoint_source(const qe_checkpoint *ck);
size_t qe_checkpoint_n_files(const qe_checkpoint *ck);
const char *qe_checkpoint_file_path(const qe_checkpoint *ck, size_t i);
/* Note: qe_checkpoint_add_file re-sorts the tensor table, so qe_tensor
 * pointers obtained earlier are invalid after it; bind weights after the last
 * file is added. The tensors themselves (data) stay mapped until free. */

/* Takes over one mapping (munmap at free) and an optional heap block (free at
 * free) with tensors already validated against them (a GGUF file, gguf.c);
 * names are copied. Only into an empty checkpoint. On failure ownership has
 * still moved: qe_checkpoint_free releases map and owned. */
qembed_status qe_checkpoint_adopt(qe_checkpoint *ck, const char *path, void *map, size_t size, void *owned,
                                  const qe_tensor *ts, size_t n, qembed_error *err);

/* One tensor as declared by a safetensors header, already validated against
 * the file: begin/end are offsets into the data region (file offset
 * data_start + begin), end - begin == numel * dtype size, inside the file,
 * aligned to the element size. */
typedef struct qe_st_entry {
    char *name;
    qe_dtype dtype;
    int ndim; /* 0, 1 or 2 */
    int64_t shape[2];
    uint64_t begin, end;
} qe_st_entry;

/* Parses and validates the header of a whole safetensors file held in memory
 * (`file`, `size` bytes: the mapping). Pure: no I/O, keeps no state (the fuzz
 * target drives it). On success *entries (n_entries of them, header order) is
 * owned by the caller: free with qe_safetensors_entries_free. `origin` names
 * the file in messages. */
qembed_status qe_safetensors_parse(const void *file, size_t size, const char *origin, qe_st_entry **entries,
                                   size_t *n_entries, size_t *data_start, qembed_error *err);
void qe_safetensors_entries_free(qe_st_entry *entries, size_t n);

#endif
