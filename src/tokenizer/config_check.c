/* tokenizer_config.json: checked against the loaded tokenizer. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/file.h"
#include "tokenizer/load_internal.h"

/* tokenizer_config.json is optional: the reference's ids do not depend on
 * it. When present it must be JSON, and its added_tokens_decoder must agree
 * with tokenizer.json (a mismatch means the two files do not belong
 * together). */
qembed_status qe_tok_check_config(const qembed_tokenizer *t, const char *path, qembed_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return QEMBED_OK;
    char *buf;
    size_t len;
    QE_TRY(qe_read_file(path, SIZE_MAX, &buf, &len, err));
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!root) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON", path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    const cJSON *e;
    qembed_status s = QEMBED_OK;
    cJSON_ArrayForEach(e, dec) {
        char *end;
        long id = strtol(e->string, &end, 10);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (*end || id < 0 || !cJSON_IsString(c)) continue;
        size_t l = strlen(c->valuestring);
        if ((size_t)id >= t->n_ids || t->str_len[id] != l ||
            memcmp(t->str_pool + t->str_off[id], c->valuestring, l) != 0) {
            s = qe_error(
                err, QEMBED_ERR_MODEL_FORMAT,
                "%s: added_tokens_decoder[\"%ld\"] is \"%.60s\", which tokenizer.json does not have at "
                "that id",
                path, id, c->valuestring);
            break;
        }
    }
    cJSON_Delete(root);
    return s;
}
