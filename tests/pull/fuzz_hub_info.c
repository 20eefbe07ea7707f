/* libFuzzer target: the Hub's model-info JSON (`qembed pull` reads it from
 * the network or a mirror) on arbitrary bytes. An accepted answer must hold
 * only what the downloader relies on: a 40-hex commit, safe relative paths,
 * no duplicate, sizes >= -1, well-formed hashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    qh_info info;
    char err[QH_ERR_MAX];
    if (qh_info_parse(buf, size, &info, err, sizeof err) == 0) {
        if (strlen(info.sha) != 40) abort();
        for (size_t i = 0; i < info.n_files; i++) {
            const qh_file *f = &info.files[i];
            if (!f->path || !qh_path_is_safe(f->path) || f->size < -1) abort();
            if (f->blob_id[0] && strlen(f->blob_id) != 40) abort();
            if (f->lfs_sha256[0] && strlen(f->lfs_sha256) != 64) abort();
            for (size_t j = 0; j < i; j++)
                if (!strcmp(info.files[j].path, f->path)) abort();
        }
        qh_info_free(&info);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(buf);
    return 0;
}
