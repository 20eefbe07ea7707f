/* A GGUF file as a qembed model: the qwen3 metadata as a qe_config, where a
 * .gguf is (a path or a folder holding one), and the file opened as a
 * checkpoint under Hugging Face names (contract in gguf.h). The parsing and
 * validation of the bytes is gguf.c. */
#include "model/gguf.h"

#include "common/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const qe_gguf_tensor *find_tensor(const qe_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

qembed_status qe_gguf_config(const qe_gguf *g, const char *origin, qe_config *cfg, qembed_error *err) {
    if (!origin) origin = "gguf";
    const char *arch;
    size_t al;
    if (!qe_gguf_get_str(g, "general.architecture", &arch, &al))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: metadata \"general.architecture\" is missing (expected \"qwen3\")", origin);
    if (al != 5 || memcmp(arch, "qwen3", 5))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                "%s: architecture \"%.*s\"; qembed runs \"qwen3\" (Qwen3-Embedding)", origin,
                (int)(al > 60 ? 60 : al), arch);
    int64_t pool;
    /* llama.cpp: 0 none, 1 mean, 2 cls, 3 last, 4 rank. Qwen3-Embedding is last. */
    if (qe_gguf_get_int(g, "qwen3.pooling_type", &pool) && pool != 3 && pool != 0)
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                "%s: qwen3.pooling_type is %lld; qembed pools the last token (3, as Qwen3-Embedding)", origin,
                (long long)pool);
    const qe_gguf_tensor *emb = find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: tensor \"token_embd.weight\" is missing or not a matrix",
                origin);
    /* Required keys -> config.json fields; qe_config_parse then applies the
     * exact checks a config.json gets, so both paths accept the same shapes. */
    static const struct {
        const char *key, *field;
        int required;
    } ints[] = {
        {"qwen3.embedding_length", "hidden_size", 1},
        {"qwen3.block_count", "num_hidden_layers", 1},
        {"qwen3.attention.head_count", "num_attention_heads", 1},
        {"qwen3.attention.head_count_kv", "num_key_value_heads", 1},
        {"qwen3.feed_forward_length", "intermediate_size", 1},
        {"qwen3.context_length", "max_position_embeddings", 1},
        {"qwen3.attention.key_length", "head_dim", 0},
    };
    char json[2048];
    size_t n = (size_t)snprintf(json, sizeof json,
                                "{\"architectures\":[\"Qwen3Model\"],\"model_type\":\"qwen3\","
                                "\"vocab_size\":%lld",
                                (long long)emb->ne[1]);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v;
        if (!qe_gguf_get_int(g, ints[i].key, &v)) {
            if (!ints[i].required) continue;
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: metadata \"%s\" is missing or not an integer", origin,
                    ints[i].key);
        }
        n += (size_t)snprintf(json + n, sizeof json - n, ",\"%s\":%lld", ints[i].field, (long long)v);
    }
    double eps, theta = 1e6;
    if (!qe_gguf_get_f64(g, "qwen3.attention.layer_norm_rms_epsilon", &eps))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: metadata \"qwen3.attention.layer_norm_rms_epsilon\" is missing", origin);
    if (!qe_gguf_get_f64(g, "qwen3.rope.freq_base", &theta))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: metadata \"qwen3.rope.freq_base\" is missing", origin);
    if (!isfinite(eps) || !isfinite(theta))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: rms epsilon or rope base is not finite", origin);
    const char *dt = emb->type == QE_GGML_F32    ? "float32"
                     : emb->type == QE_GGML_BF16 ? "bfloat16"
                                                 : "float16";
    n += (size_t)snprintf(json + n, sizeof json - n,
                          ",\"rms_norm_eps\":%.17g,\"rope_theta\":%.17g,\"tie_word_embeddings\":%s,"
                          "\"torch_dtype\":\"%s\"}",
                          eps, theta, find_tensor(g, "output.weight") ? "false" : "true", dt);
    if (n >= sizeof json) QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: metadata too long", origin);
    char where[1100];
    snprintf(where, sizeof where, "%s (GGUF metadata)", origin);
    return qe_config_parse(json, n, where, cfg, err);
}

int qe_gguf_locate(const char *path, char *file, size_t file_size, qembed_error *err, qembed_status *st) {
    *st = QEMBED_OK;
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return 0;
    size_t pl = strlen(path);
    if (S_ISREG(sb.st_mode)) {
        if (pl < 5 || strcmp(path + pl - 5, ".gguf")) return 0;
        if ((size_t)snprintf(file, file_size, "%s", path) >= file_size) {
            *st = qe_error(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: path too long", path);
            return 0;
        }
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) return 0;
    /* A folder with safetensors stays a safetensors model. */
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", path);
    if (access(p, F_OK) == 0) return 0;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
    if (access(p, F_OK) == 0) return 0;
    snprintf(p, sizeof p, "%s/qembed-split.json", path);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    char first[512] = "", second[512] = "";
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
        if (found == 0)
            snprintf(first, sizeof first, "%s", e->d_name);
        else if (found == 1)
            snprintf(second, sizeof second, "%s", e->d_name);
        found++;
    }
    closedir(d);
    if (found == 0) return 0;
    if (found > 1) {
        *st = qe_error(err, QEMBED_ERR_INVALID_ARGUMENT,
                       "%s: holds %d .gguf files (%s, %s%s); name the one to load", path, found, first,
                       second, found > 2 ? ", ..." : "");
        return 0;
    }
    if ((size_t)snprintf(file, file_size, "%s/%s", path, first) >= file_size) {
        *st = qe_error(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: path too long", path);
        return 0;
    }
    return 1;
}

/* GGUF role names -> the Hugging Face names weights.c binds. */
static const struct {
    const char *gguf, *hf;
} layer_names[] = {
    {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

/* Writes the HF name of a GGUF tensor name; 0 for names qembed does not use. */
/* The ggml types qembed runs -> its dtype; 0 for any other. */
static int dtype_of(uint32_t ggml_type, qe_dtype *dt) {
    switch (ggml_type) {
        case QE_GGML_F32: *dt = QE_F32; return 1;
        case QE_GGML_F16: *dt = QE_F16; return 1;
        case QE_GGML_BF16: *dt = QE_BF16; return 1;
        case QE_GGML_Q8_0: *dt = QE_Q8_0; return 1;
        case QE_GGML_Q4_0: *dt = QE_Q4_0; return 1;
        case QE_GGML_Q5_0: *dt = QE_Q5_0; return 1;
        case QE_GGML_Q4_K: *dt = QE_Q4_K; return 1;
        case QE_GGML_Q5_K: *dt = QE_Q5_K; return 1;
        case QE_GGML_Q6_K: *dt = QE_Q6_K; return 1;
    }
    return 0;
}

static int hf_name(const char *g, char *out, size_t n) {
    if (!strcmp(g, "token_embd.weight")) return snprintf(out, n, "embed_tokens.weight"), 1;
    if (!strcmp(g, "output_norm.weight")) return snprintf(out, n, "norm.weight"), 1;
    if (strncmp(g, "blk.", 4)) return 0;
    char *end;
    long l = strtol(g + 4, &end, 10);
    if (end == g + 4 || *end != '.' || l < 0 || l > 100000) return 0;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        size_t k = strlen(layer_names[i].gguf);
        if (!strncmp(end + 1, layer_names[i].gguf, k) && !strcmp(end + 1 + k, ".weight"))
            return snprintf(out, n, "layers.%ld.%s.weight", l, layer_names[i].hf), 1;
    }
    return 0;
}

qembed_status qe_gguf_open(const char *path, qe_checkpoint **out, qe_config *cfg, qembed_error *err) {
    if (!out || !cfg || !path) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_gguf_open: missing argument");
    *out = NULL;
    void *map;
    size_t size;
    QE_TRY(qe_map_file(path, 24, "too short for a GGUF header (24 bytes): truncated or not a GGUF file", &map,
                       &size, err));
    qe_gguf *g = NULL;
    qe_tensor *ts = NULL;
    uint16_t *owned = NULL;
    qembed_status st = qe_gguf_parse(map, size, path, &g, err);
    if (st == QEMBED_OK) st = qe_gguf_config(g, path, cfg, err);
    if (st != QEMBED_OK) goto fail;
    /* Every tensor qembed needs present, a matrix or vector, of a type it
     * runs, before any work. */
    {
        int L = cfg->n_layers;
        for (int l = -1; l < L; l++) {
            size_t nr = l < 0 ? 2 : sizeof layer_names / sizeof layer_names[0];
            for (size_t r = 0; r < nr; r++) {
                char nm[96];
                if (l < 0)
                    snprintf(nm, sizeof nm, "%s", r ? "output_norm.weight" : "token_embd.weight");
                else
                    snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, layer_names[r].gguf);
                const qe_gguf_tensor *t = find_tensor(g, nm);
                if (!t) {
                    st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                                  "%s: tensor \"%s\" is missing (block_count is %d)", path, nm, L);
                    goto fail;
                }
                qe_dtype dt;
                if (!dtype_of(t->type, &dt)) {
                    st = qe_error(
                        err, QEMBED_ERR_UNSUPPORTED,
                        "%s: tensor \"%s\" has type %s; qembed runs F32, F16, BF16, Q8_0, Q6_K, Q5_K, "
                        "Q4_K, Q5_0 and Q4_0",
                        path, nm, qe_ggml_type_name(t->type));
                    goto fail;
                }
                if (t->n_dims > 2) {
                    st = qe_error(err, QEMBED_ERR_MODEL_FORMAT, "%s: tensor \"%s\" has %u dimensions", path,
                                  nm, t->n_dims);
                    goto fail;
                }
            }
        }
    }
    ts = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *ts);
    char(*names)[128] = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *names);
    if (!ts || !names) {
        free(names);
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    size_t n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qe_gguf_tensor *t = &g->tensors[i];
        if (!hf_name(t->name, names[n], sizeof names[n]))
            continue; /* output.weight, rope tables...: unused */
        qe_dtype dt;
        if (t->n_dims > 2 || !dtype_of(t->type, &dt))
            continue; /* a layer beyond block_count: weights.c reports it */
        qe_tensor *x = &ts[n];
        x->name = names[n];
        x->ndim = (int)t->n_dims;
        if (t->n_dims == 2)
            x->shape[0] = t->ne[1], x->shape[1] = t->ne[0];
        else
            x->shape[0] = t->ne[0];
        const uint8_t *src = (const uint8_t *)map + g->data_start + t->offset;
        x->data = src;
        x->dtype = dt;
        if (qe_dtype_block(dt) > 1) {
            /* as stored: products run on the blocks (matmul_q8.c, matmul_kq.c);
             * gguf.c checked that rows are whole blocks */
        } else {
            if ((uintptr_t)src % qe_dtype_size(x->dtype)) {
                free(names);
                st = qe_error(err, QEMBED_ERR_MODEL_FORMAT,
                              "%s: tensor \"%s\" is not aligned to its elements", path, t->name);
                goto fail;
            }
        }
        n++;
    }
    qe_checkpoint *ck = qe_checkpoint_new();
    if (!ck) {
        free(names);
        st = qe_error(err, QEMBED_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    st = qe_checkpoint_adopt(ck, path, map, size, owned, ts, n, err);
    free(names);
    free(ts);
    qe_gguf_free(g);
    if (st != QEMBED_OK) {
        qe_checkpoint_free(ck);
        return st;
    }
    *out = ck;
    return QEMBED_OK;
fail:
    free(ts);
    free(owned);
    qe_gguf_free(g);
    munmap(map, size);
    return st;
}
