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

typedef struct cli_reader {
    FILE *f; /* NULL: texts come from args */
    int own; /* close f at the end */
    int jsonl;
    const char *name; /* file name for messages */
    char **args;
    int n_args;
    int next_arg;
    size_t line;    /* lines read so far */
    int skip_bad;   /* --on-error skip: a bad line is a text with a reason (cli_chunk.why), not an error */
    long long size; /* the input file's size in bytes; 0 when not a regular file */
    char *buf;      /* getline buffer */
    size_t buf_cap;
    char err[600];
} cli_reader;

/* path NULL: the texts are args[0..n_args). Returns 0, or -1 with r->err. */
int cli_reader_open(cli_reader *r, const char *path, const char *format, char **args, int n_args);
void cli_reader_close(cli_reader *r);
/* Rewinds a file input to count its texts first (only for a .npy header
 * written to a pipe, which cannot be patched at the end): returns the count,
 * or -1 when the input cannot be rewound (a pipe) or is invalid (r->err is
 * then set only for invalid data). */
long cli_reader_count(cli_reader *r);
/* Byte offset of the next unread line of a file input (-1 for arguments or
 * when unknown); cli_reader_seek goes back there with the line count then. */
long long cli_reader_tell(cli_reader *r);
int cli_reader_seek(cli_reader *r, long long offset, size_t line);
/* Passes over up to max texts without parsing them (another shard's): every
 * line of a text file, every non-blank line of JSONL. Returns the count (0 at
 * the end), or -1 on a read error (r->err). */
long cli_reader_skip(cli_reader *r, size_t max);

/* A chunk of texts (owned), with each one's input index and line. */
typedef struct cli_chunk {
    char **texts;
    size_t *lens;
    size_t *lines; /* line in the file (0 for arguments) */
    char **why;    /* with skip_bad: why texts[i] is unusable (owned), else NULL; texts[i] is then "" */
    size_t first;  /* input index of texts[0] */
    size_t n;
    size_t cap;
} cli_chunk;

/* Reads up to max texts: 1 with chunk->n > 0, 0 at the end, -1 on error (r->err). */
int cli_reader_chunk(cli_reader *r, cli_chunk *c, size_t max, size_t first);
void cli_chunk_free(cli_chunk *c);

/* Prints a library error for an input of a chunk: the library's "input K"
 * (K within the chunk) is rewritten as the input's index in the whole run and
 * its line, e.g. "qembed embed: input 41 (line 42 of texts.txt): ...". */
void cli_report_input_error(const char *cmd, const cli_reader *r, const cli_chunk *c, const qembed_error *e);

/* Output formats of `embed`. */
typedef enum cli_out_fmt { CLI_OUT_JSON, CLI_OUT_JSONL, CLI_OUT_NPY, CLI_OUT_TSV } cli_out_fmt;

int cli_out_fmt_parse(const char *s, cli_out_fmt *out);
/* The format a file name's extension implies; -1 when none. */
int cli_out_fmt_from_name(const char *path, cli_out_fmt *out);

typedef struct cli_writer {
    FILE *f;
    int own;
    cli_out_fmt fmt;
    int dims;
    size_t rows;
    long expect_rows; /* npy: rows announced in the header when the file cannot be patched; -1 */
    int seekable;
    char num[32];
} cli_writer;

/* path NULL: standard output. expect_rows: the row count when known in
 * advance, else -1 (npy then needs a seekable file). Returns 0 or -1 with a
 * message printed. */
int cli_writer_open(cli_writer *w, const char *path, cli_out_fmt fmt, int dims, long expect_rows);
int cli_writer_rows(cli_writer *w, const float *v, size_t n);
/* A gap for an input skipped with --on-error skip, so row k stays input k: a
 * row of NaN (npy, tsv) or null (json, jsonl). */
int cli_writer_gap(cli_writer *w);
/* Resumable jobs: reopens an existing output, cut back to the committed
 * `bytes` holding `rows` rows (bytes 0: created afresh, as cli_writer_open).
 * Returns 0 or -1 with a message printed. */
int cli_writer_reopen(cli_writer *w, const char *path, cli_out_fmt fmt, int dims, size_t rows,
                      long long bytes);
/* Makes what is written so far durable: the .npy header's shape brought up to
 * date, flushed, fsynced. *bytes: the file's committed length. 0 or -1. */
int cli_writer_commit(cli_writer *w, long long *bytes);
/* The fixed 128-byte .npy header (float32, C order) for rows x dims. */
int cli_npy_header(FILE *f, size_t rows, int dims);
/* Reads a .npy header written by cli_npy_header: its rows and dims; 0 or -1. */
int cli_npy_read_header(FILE *f, size_t *rows, int *dims);
/* Finishes (JSON's closing bracket, the .npy header's final shape); 0 or -1. */
int cli_writer_close(cli_writer *w);

/* Writes one float as the shortest text that reads back as the same float. */
void cli_fmt_float(char *buf, size_t n, float v);

#endif
