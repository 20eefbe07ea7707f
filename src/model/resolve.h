/* Turns what the user named into a directory: a path as it is, or a Hugging
 * Face repo id ("Qwen/Qwen3-Embedding-0.6B") looked up in the local cache
 * ($HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; refs/main names the snapshot). */
#ifndef QE_RESOLVE_H
#define QE_RESOLVE_H

#include <stddef.h>

#include "common/error.h"

qembed_status qe_resolve_model_path(const char *name, char *out, size_t out_size, qembed_error *err);

#endif
