/* config.json: the Hugging Face Qwen3 configuration. Every size is checked
 * against bounds before anything is allocated from it, because a model's
 * buffers are planned from these numbers. */
#include "model/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/file.h"

/* Largest config.json accepted: real ones are under 2 KB. */
#define QE_CONFIG_MAX_BYTES (1 << 20)

typedef struct int_field {
    const char *key;
    int *dst;
    long min, max;
    int required;
} int_field;

static const char *json_type_name(const cJSON *it) {
    if (cJSON_IsNumber(it)) return "a number";
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsNull(it)) return "null";
    if (cJSON_IsArray(it)) return "an array";
    if (cJSON_IsObject(it)) return "an object";
    return "an invalid value";
}

static qembed_status get_int(const cJSON *root, const char *origin, const int_field *f, qembed_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, f->key);
    if (!it) {
        if (!f->required) return QEMBED_OK;
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: field \"%s\" is missing (expected an integer in [%ld, %ld])", origin, f->key, f->min,
                f->max);
    }
    if (!cJSON_IsNumber(it))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is %s, expected an integer in [%ld, %ld]",
                origin, f->key, json_type_name(it), f->min, f->max);
    double v = it->valuedouble;
    if (!(v == floor(v)) || v < (double)f->min || v > (double)f->max)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is %.17g, expected an integer in [%ld, %ld]",
                origin, f->key, v, f->min, f->max);
    *f->dst = (int)v;
    return QEMBED_OK;
}

static qembed_status get_double(const cJSON *root, const char *origin, const char *key, double *dst,
                                double lo, double hi, qembed_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is missing (expected a number in (%g, %g])",
                origin, key, lo, hi);
    if (!cJSON_IsNumber(it))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is %s, expected a number in (%g, %g]", origin,
                key, json_type_name(it), lo, hi);
    double v = it->valuedouble;
    if (!isfinite(v) || !(v > lo) || v > hi)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is %g, expected a number in (%g, %g]", origin,
                key, v, lo, hi);
    *dst = v;
    return QEMBED_OK;
}

/* A field whose presence with a truthy value would change the math in a way
 * qembed does not implement: refusing beats computing wrong vectors. */
static qembed_status refuse_if_set(const cJSON *root, const char *origin, const char *key, const char *why,
                                   qembed_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it) || cJSON_IsFalse(it)) return QEMBED_OK;
    QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: field \"%s\" is set (%s); qembed supports only %s", origin, key,
            json_type_name(it), why);
}

static qembed_status parse_root(const cJSON *root, const char *origin, qe_config *cfg, qembed_error *err) {
    if (!cJSON_IsObject(root))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: expected a JSON object at the top level, found %s", origin,
                json_type_name(root));

    /* Architecture first: a config of another family fails with the name of
     * that family, not with a complaint about some missing size. */
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !cJSON_IsString(mt))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"model_type\" is %s, expected a string (\"qwen3\")",
                origin, json_type_name(mt));
    if (archs) {
        if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) < 1)
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                    "%s: field \"architectures\" is %s, expected a non-empty array of strings", origin,
                    json_type_name(archs));
        const char *found = NULL;
        const cJSON *a;
        cJSON_ArrayForEach(a, archs) {
            if (!cJSON_IsString(a))
                QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                        "%s: field \"architectures\" holds %s, expected strings", origin, json_type_name(a));
            if (!strcmp(a->valuestring, "Qwen3ForCausalLM") || !strcmp(a->valuestring, "Qwen3Model")) {
                found = a->valuestring;
                break;
            }
        }
        if (!found)
            QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                    "%s: field \"architectures\" is [\"%.80s\"...]: unsupported architecture, expected "
                    "Qwen3ForCausalLM or Qwen3Model",
                    origin, cJSON_GetArrayItem(archs, 0)->valuestring);
        snprintf(cfg->architecture, sizeof cfg->architecture, "%s", found);
    } else if (mt && !strcmp(mt->valuestring, "qwen3")) {
        snprintf(cfg->architecture, sizeof cfg->architecture, "Qwen3Model");
    } else {
        QE_FAIL(
            err, QEMBED_ERR_MODEL_FORMAT,
            "%s: field \"architectures\" is missing (expected [\"Qwen3ForCausalLM\"] or [\"Qwen3Model\"])",
            origin);
    }
    if (mt && strcmp(mt->valuestring, "qwen3"))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: field \"model_type\" is \"%.80s\", expected \"qwen3\"",
                origin, mt->valuestring);
    snprintf(cfg->model_type, sizeof cfg->model_type, "qwen3");

    /* Bounds: generous for any plausible model, tight enough that products
     * of them (vocab x hidden, layers x ...) fit comfortably in 64 bits. */
    cfg->head_dim = 0;
    const int_field ints[] = {
        {"hidden_size", &cfg->hidden_size, 1, 1 << 16, 1},
        {"num_hidden_layers", &cfg->n_layers, 1, 1024, 1},
        {"num_attention_heads", &cfg->n_heads, 1, 1024, 1},
        {"num_key_value_heads", &cfg->n_kv_heads, 1, 1024, 1},
        {"intermediate_size", &cfg->intermediate_size, 1, 1 << 20, 1},
        {"vocab_size", &cfg->vocab_size, 1, 1 << 24, 1},
        {"max_position_embeddings", &cfg->max_position_embeddings, 1, 1 << 24, 1},
        {"head_dim", &cfg->head_dim, 2, 1024, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) QE_TRY(get_int(root, origin, &ints[i], err));
    QE_TRY(get_double(root, origin, "rms_norm_eps", &cfg->rms_norm_eps, 0.0, 1.0, err));
    QE_TRY(get_double(root, origin, "rope_theta", &cfg->rope_theta, 0.0, 1e12, err));

    if (cfg->n_heads % cfg->n_kv_heads != 0)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                "%s: field \"num_attention_heads\" (%d) is not a multiple of \"num_key_value_heads\" (%d)",
                origin, cfg->n_heads, cfg->n_kv_heads);
    if (cfg->head_dim == 0) {
        if (cfg->hidden_size % cfg->n_heads != 0)
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT,
                    "%s: field \"head_dim\" is absent and \"hidden_size\" (%d) is not a multiple of "
                    "\"num_attention_heads\" (%d)",
                    origin, cfg->hidden_size, cfg->n_heads);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    }
    /* Rotate-half RoPE pairs value i with i + head_dim/2. */
    if (cfg->head_dim % 2 != 0)
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"head_dim\" is %d, expected an even number (RoPE)",
                origin, cfg->head_dim);
    if ((long)cfg->n_heads * cfg->head_dim > (1 << 17))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: num_attention_heads x head_dim = %ld, expected at most %d",
                origin, (long)cfg->n_heads * cfg->head_dim, 1 << 17);

    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie))
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"tie_word_embeddings\" is %s, expected a boolean",
                origin, json_type_name(tie));
    cfg->tie_word_embeddings = tie ? cJSON_IsTrue(tie) : false;

    /* transformers >= 4.56 writes "dtype"; older versions "torch_dtype". It is
     * only the checkpoint's nominal type: each tensor's own dtype is what the
     * kernels read. */
    const char *dkey = "torch_dtype";
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, dkey);
    if (!dt) dt = cJSON_GetObjectItemCaseSensitive(root, dkey = "dtype");
    cfg->torch_dtype = QE_BF16;
    if (dt && !cJSON_IsNull(dt)) {
        if (!cJSON_IsString(dt))
            QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: field \"%s\" is %s, expected a string", origin, dkey,
                    json_type_name(dt));
        if (!strcmp(dt->valuestring, "bfloat16"))
            cfg->torch_dtype = QE_BF16;
        else if (!strcmp(dt->valuestring, "float16"))
            cfg->torch_dtype = QE_F16;
        else if (!strcmp(dt->valuestring, "float32"))
            cfg->torch_dtype = QE_F32;
        else
            QE_FAIL(err, QEMBED_ERR_UNSUPPORTED,
                    "%s: field \"%s\" is \"%.40s\", expected \"bfloat16\", \"float16\" or \"float32\"",
                    origin, dkey, dt->valuestring);
    }

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")))
        QE_FAIL(err, QEMBED_ERR_UNSUPPORTED, "%s: field \"hidden_act\" is %s%.40s%s, expected \"silu\"",
                origin, cJSON_IsString(act) ? "\"" : "",
                cJSON_IsString(act) ? act->valuestring : json_type_name(act),
                cJSON_IsString(act) ? "\"" : "");
    QE_TRY(refuse_if_set(root, origin, "rope_scaling", "plain RoPE (rope_scaling null)", err));
    QE_TRY(refuse_if_set(root, origin, "attention_bias", "projections without bias", err));
    QE_TRY(refuse_if_set(root, origin, "use_sliding_window", "full attention", err));
    return QEMBED_OK;
}

qembed_status qe_config_parse(const char *json, size_t len, const char *origin, qe_config *cfg,
                              qembed_error *err) {
    if (!origin) origin = "config.json";
    if (!json || !cfg) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "%s: no JSON text given", origin);
    memset(cfg, 0, sizeof *cfg);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
        QE_FAIL(err, QEMBED_ERR_MODEL_FORMAT, "%s: not valid JSON (parse error near byte %zu)", origin, off);
    }
    qembed_status st = parse_root(root, origin, cfg, err);
    cJSON_Delete(root);
    if (st != QEMBED_OK) memset(cfg, 0, sizeof *cfg);
    return st;
}

qembed_status qe_config_load(const char *path, qe_config *cfg, qembed_error *err) {
    if (!path || !cfg) QE_FAIL(err, QEMBED_ERR_INVALID_ARGUMENT, "qe_config_load: no path given");
    char *buf = NULL;
    size_t n = 0;
    QE_TRY(qe_read_file(path, QE_CONFIG_MAX_BYTES, &buf, &n, err));
    qembed_status st = qe_config_parse(buf, n, path, cfg, err);
    free(buf);
    return st;
}
