/* Input and output of the embed and tokenize commands.
 *
 * Inputs come from the command line (one text per argument) or from a file
 * (--input FILE, "-" for standard input): one text per line (a trailing "\r"
 * is dropped with the "\n"), or with a .jsonl name (or --input-format jsonl)
 * one JSON string per line, so texts may hold newlines; blank JSONL lines are
 * skipped. Texts are read in chunks so a large file streams in constant
 * memory. */
#ifndef QEMBED_CLI_IO_H
#define QEMBED_CLI_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qembed.h"

typedef struct qe_reader {
    FILE *f;          /* NULL: texts come from args */
    int own;          /* close f at the end */
    int jsonl;
    const char *name; /* file name for messages */
    char **args;
    int n_args;
    int next_arg;
    size_t line;      /* lines read so far */
    char *buf;        /* getline buffer */
    size_t buf_cap;
    char err[600];
} qe_reader;

/* path NULL: the texts are args[0..n_args). Returns 0, or -1 with r->err. */
int qe_reader_open(qe_reader *r, const char *path, const char *format, char **args, int n_args);
void qe_reader_close(qe_reader *r);
/* Rewinds a file input to count its texts first (for the .npy header and the
 * progress bar's ETA): returns the count, or -1 when the input cannot be
 * rewound (a pipe) or is invalid (r->err is then set only for invalid data). */
long qe_reader_count(qe_reader *r);

/* A chunk of texts (owned), with each one's input index and line. */
typedef struct qe_chunk {
    char **texts;
    size_t *lens;
    size_t *lines;  /* line in the file (0 for arguments) */
    size_t first;   /* input index of texts[0] */
    size_t n;
    size_t cap;
} qe_chunk;

/* Reads up to max texts: 1 with chunk->n > 0, 0 at the end, -1 on error (r->err). */
int qe_reader_chunk(qe_reader *r, qe_chunk *c, size_t max, size_t first);
void qe_chunk_free(qe_chunk *c);

/* Prints a library error for an input of a chunk: the library's "input K"
 * (K within the chunk) is rewritten as the input's index in the whole run and
 * its line, e.g. "qembed embed: input 41 (line 42 of texts.txt): ...". */
void qe_report_input_error(const char *cmd, const qe_reader *r, const qe_chunk *c,
                           const qembed_error *e);

/* Output formats of `embed`. */
typedef enum qe_out_fmt { QE_OUT_JSON, QE_OUT_JSONL, QE_OUT_NPY, QE_OUT_TSV } qe_out_fmt;

int qe_out_fmt_parse(const char *s, qe_out_fmt *out);
/* The format a file name's extension implies; -1 when none. */
int qe_out_fmt_from_name(const char *path, qe_out_fmt *out);

typedef struct qe_writer {
    FILE *f;
    int own;
    qe_out_fmt fmt;
    int dims;
    size_t rows;
    long expect_rows; /* npy: rows announced in the header when the file cannot be patched; -1 */
    int seekable;
    char num[32];
} qe_writer;

/* path NULL: standard output. expect_rows: the row count when known in
 * advance, else -1 (npy then needs a seekable file). Returns 0 or -1 with a
 * message printed. */
int qe_writer_open(qe_writer *w, const char *path, qe_out_fmt fmt, int dims, long expect_rows);
int qe_writer_rows(qe_writer *w, const float *v, size_t n);
/* Finishes (JSON's closing bracket, the .npy header's final shape); 0 or -1. */
int qe_writer_close(qe_writer *w);

/* Writes one float as the shortest text that reads back as the same float. */
void qe_fmt_float(char *buf, size_t n, float v);

#endif
