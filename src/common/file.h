/* Reading a small file (a JSON document: tokenizer.json, config.json, a
 * manifest or a shard index) whole into memory, with errors that name the
 * file. The one file reader of the library; weights are mapped instead
 * (qe_map_file below). */
#ifndef QE_FILE_H
#define QE_FILE_H

#include <stddef.h>

#include "common/error.h"

/* Reads the regular file at path into *buf (malloc'd, NUL-terminated after
 * *len bytes; the caller frees it). A file larger than max bytes is refused
 * with QEMBED_ERR_MODEL_FORMAT (SIZE_MAX: no limit); a missing or unreadable
 * file or one that is not a regular file is QEMBED_ERR_IO. On failure *buf
 * is NULL. */
qembed_status qe_read_file(const char *path, size_t max, char **buf, size_t *len, qembed_error *err);

/* Maps the regular file at path read-only (MAP_PRIVATE) into *map, *size
 * bytes; the descriptor is closed (the mapping keeps the file alive). A file
 * shorter than min_size is QEMBED_ERR_MODEL_FORMAT with the message
 * "PATH: file is N bytes, " followed by too_short; a missing, unreadable or
 * non-regular file, or a failed mmap, is QEMBED_ERR_IO. The weight files'
 * (safetensors, GGUF) one way in. */
qembed_status qe_map_file(const char *path, size_t min_size, const char *too_short, void **map, size_t *size,
                          qembed_error *err);

#endif
