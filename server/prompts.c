/* sentence-transformers prompts: config_sentence_transformers.json's
 * "prompts" object, loaded once at attach, looked up by prompt_name. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int qs_load_prompts(qs_server *srv) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", srv->info.resolved_path);
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* optional file */
    char *buf = NULL;
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && n < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)))
            len = fread(buf, 1, (size_t)n, f);
    }
    fclose(f);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, len) : NULL;
    free(buf);
    cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    if (!cJSON_IsObject(prompts)) {
        if (root)
            qs_log(srv, QEMBED_LOG_WARN,
                   "%s: no \"prompts\" object; prompt_name will be used as "
                   "instruction text",
                   path);
        cJSON_Delete(root);
        return 0;
    }
    int n = cJSON_GetArraySize(prompts);
    srv->prompt_names = calloc((size_t)n + 1, sizeof(char *));
    srv->prompt_texts = calloc((size_t)n + 1, sizeof(char *));
    if (!srv->prompt_names || !srv->prompt_texts) {
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, prompts) {
        if (!cJSON_IsString(it) || !it->string) continue;
        srv->prompt_names[srv->n_prompts] = strdup(it->string);
        srv->prompt_texts[srv->n_prompts] = strdup(it->valuestring);
        if (srv->prompt_names[srv->n_prompts] && srv->prompt_texts[srv->n_prompts]) srv->n_prompts++;
    }
    cJSON_Delete(root);
    qs_log(srv, QEMBED_LOG_INFO, "%zu prompt(s) from %s", srv->n_prompts, path);
    return 0;
}

void qs_free_prompts(qs_server *srv) {
    for (size_t i = 0; i < srv->n_prompts; i++) {
        free(srv->prompt_names[i]);
        free(srv->prompt_texts[i]);
    }
    free(srv->prompt_names);
    free(srv->prompt_texts);
    srv->prompt_names = srv->prompt_texts = NULL;
    srv->n_prompts = 0;
}

const char *qs_find_prompt(const qs_server *srv, const char *name) {
    for (size_t i = 0; i < srv->n_prompts; i++)
        if (strcmp(srv->prompt_names[i], name) == 0) return srv->prompt_texts[i];
    return NULL;
}
