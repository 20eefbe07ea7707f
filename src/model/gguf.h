/* GGUF (version 3) model files: parsing and validating the header (pure, on
 * bytes in memory, so the fuzz target drives it), reading the qwen3 metadata
 * into a qe_config, and opening a .gguf as a qe_checkpoint whose tensors carry
 * the Hugging Face names the rest of qembed binds (token_embd.weight ->
 * embed_tokens.weight, blk.N.attn_q.weight -> layers.N.self_attn.q_proj.weight,
 * ...). GGUF's ne[] lists the innermost dimension first, so a matrix of
 * ne = [cols, rows] becomes shape [rows, cols], the same row-major bytes.
 * llama.cpp's converter permutes Q/K rows only for the llama family (its
 * LlamaModel.modify_tensors); Qwen2/Qwen3 tensors are written as in the
 * safetensors, so none is undone here. */
#ifndef QE_GGUF_H
#define QE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/config.h"

/* ggml type ids as stored in tensor infos. */
enum {
    QE_GGML_F32 = 0,
    QE_GGML_F16 = 1,
    QE_GGML_Q4_0 = 2,
    QE_GGML_Q4_1 = 3,
    QE_GGML_Q5_0 = 6,
    QE_GGML_Q5_1 = 7,
    QE_GGML_Q8_0 = 8,
    QE_GGML_Q8_1 = 9,
    QE_GGML_Q2_K = 10,
    QE_GGML_Q3_K = 11,
    QE_GGML_Q4_K = 12,
    QE_GGML_Q5_K = 13,
    QE_GGML_Q6_K = 14,
    QE_GGML_Q8_K = 15,
    QE_GGML_BF16 = 30,
};

/* GGUF metadata value types. */
enum {
    QE_GGUF_U8 = 0,
    QE_GGUF_I8,
    QE_GGUF_U16,
    QE_GGUF_I16,
    QE_GGUF_U32,
    QE_GGUF_I32,
    QE_GGUF_F32,
    QE_GGUF_BOOL,
    QE_GGUF_STRING,
    QE_GGUF_ARRAY,
    QE_GGUF_U64,
    QE_GGUF_I64,
    QE_GGUF_F64,
};

/* One key/value, pointing into the file. For an array, `val` is its first
 * element, `count` the number of elements, `arr_type` their type; strings
 * in a string array are u64 length + bytes, all checked inside the file. */
typedef struct qe_gguf_kv {
    const char *key;
    size_t key_len;
    uint32_t type;
    uint32_t arr_type;
    const uint8_t *val; /* scalar bytes, string bytes, or array elements */
    uint64_t count;     /* string length, or array element count */
} qe_gguf_kv;

/* One tensor: dims in GGUF order (ne[0] innermost), offset from the data
 * region's start, validated: known type with ne[0] a multiple of its block,
 * bytes inside the file, aligned, not overlapping another tensor. */
typedef struct qe_gguf_tensor {
    char name[256];
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    uint64_t offset, bytes;
} qe_gguf_tensor;

typedef struct qe_gguf {
    uint64_t n_kv, n_tensors;
    qe_gguf_kv *kv;
    qe_gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_start; /* file offset of the data region */
} qe_gguf;

/* Block size (elements) and bytes per block of a ggml type; 0 when unknown. */
int qe_ggml_type_info(uint32_t type, uint64_t *blck, uint64_t *bytes);
const char *qe_ggml_type_name(uint32_t type);

/* Parses and validates the whole file held in memory. Pure (no I/O): the
 * fuzz target drives it. `origin` names the file in messages. */
qembed_status qe_gguf_parse(const void *file, size_t size, const char *origin, qe_gguf **out,
                            qembed_error *err);
void qe_gguf_free(qe_gguf *g);

const qe_gguf_kv *qe_gguf_find(const qe_gguf *g, const char *key);
/* Any integer or bool type into u64/i64 (1 when present and fits). */
int qe_gguf_get_int(const qe_gguf *g, const char *key, int64_t *out);
int qe_gguf_get_f64(const qe_gguf *g, const char *key, double *out);
/* A string value (not terminated): pointer into the file and length. */
int qe_gguf_get_str(const qe_gguf *g, const char *key, const char **s, size_t *len);
/* Walks a string array: *cursor starts at kv->val; returns the next string
 * (bytes and length). Only for kvs the parser validated. */
const char *qe_gguf_next_str(const uint8_t **cursor, uint64_t *len);

/* The qwen3 metadata as a qe_config (sizes, eps, rope base; vocab from the
 * embedding's rows). Refuses another architecture, a pooling other than
 * last-token, and missing keys, naming the file and key. */
qembed_status qe_gguf_config(const qe_gguf *g, const char *origin, qe_config *cfg, qembed_error *err);

/* Is this a path to a .gguf file, or a directory holding exactly one? On 1,
 * `file` holds the .gguf path. A directory with two or more .gguf files and
 * no safetensors is an error (which one is meant is a guess). */
int qe_gguf_locate(const char *path, char *file, size_t file_size, qembed_error *err, qembed_status *st);

/* Opens `path` (a .gguf) memory-mapped: checks every tensor qembed needs is
 * present with a supported type (naming the tensor and type otherwise) and
 * returns the checkpoint (HF names) and config. Every tensor stays a view of
 * the mapping, Q8_0 included (dtype QE_Q8_0: products on the int8 blocks). */
qembed_status qe_gguf_open(const char *path, qe_checkpoint **ck, qe_config *cfg, qembed_error *err);

#endif
