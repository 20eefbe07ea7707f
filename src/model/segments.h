/* Split directories (`qembed split`): a model stored as N self-contained
 * safetensors segment files of contiguous layers plus manifest.json.
 *
 *   manifest.json  {"format": "qembed-split", "format_version": 1,
 *                   "source": "<what was split>", "n_layers": L,
 *                   "config": {<config.json as an object>},
 *                   "files": [{"name": "tokenizer.json", "bytes": n, "sha256": "..."}, ...],
 *                   "segments": [{"index": 0, "file": "segment-00-of-04.safetensors",
 *                                 "first_layer": 0, "end_layer": 7,      (end exclusive)
 *                                 "embedding": true, "final_norm": false,
 *                                 "tensors": 79, "bytes": n, "sha256": "<hex>"}, ...]}
 *
 * Segment i holds every tensor of layers [first_layer, end_layer) under its
 * name in the source checkpoint; the first also holds the token embedding,
 * the last the final norm and any tensor that belongs to no layer (lm_head).
 * config.json and the tokenizer files are copied beside the segments, so the
 * directory loads anywhere a model directory does.
 * segments.c reads and checks one at load; segments_write.c writes one.
 * (Owned by the planner area; new files in src/model by agreement.) */
#ifndef QE_SEGMENTS_H
#define QE_SEGMENTS_H

#include "common/log.h"
#include "model/checkpoint.h"
#include "model/config.h"

#define QE_SPLIT_MANIFEST "manifest.json"
#define QE_SPLIT_FORMAT "qembed-split"
#define QE_SPLIT_FORMAT_VERSION 1

/* 1 when dir/manifest.json exists. */
int qe_segments_is_split_dir(const char *dir);

/* Validates the manifest (format, order, contiguous and complete layer
 * ranges, file sizes, and with `verify` each file's SHA-256, streamed), then
 * opens every segment into one checkpoint and checks each tensor lies in its
 * segment's declared range. Every error names the segment file and what is
 * wrong. `cfg` (may be NULL) receives the manifest's config. */
qembed_status qe_segments_open(const char *dir, int verify, const qe_logger *lg, qe_checkpoint **out,
                               qe_config *cfg, qembed_error *err);

/* Layer index of a tensor name ("model.layers.12.mlp.up_proj.weight" -> 12),
 * -1 for a tensor outside the layers. */
int qe_tensor_layer(const char *name);

/* 1 for the token embedding / the final norm, under either spelling (with or
 * without the "model." prefix). */
int qe_tensor_is_embed(const char *name);
int qe_tensor_is_final_norm(const char *name);
/* The defaults of qembed_split_params (qembed_params_init). */
qembed_split_params qe_split_defaults(void);

#endif
