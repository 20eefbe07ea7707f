/* Resumable and sharded bulk jobs (`qembed embed --resume`, `--shard I/N`,
 * `qembed merge`): the small state file beside the output, OUTPUT.qembed-state.
 *
 * The job runs in chunks of CLI_JOB_CHUNK texts. After each chunk the output
 * (and the --on-error skip report) is written, flushed and fsynced, then the
 * state is replaced atomically (temporary file, fsync, rename, fsync of the
 * folder). So at any instant, a kill included, the state names a prefix of
 * the output that is complete: a resumed job cuts the output back to it,
 * seeks the input to the byte after the last committed text, and redoes at
 * most one chunk. Chunks are the same whether a job was interrupted or not
 * (their boundaries count texts from the input's start), so the vectors are
 * computed from the same batches and the final file is the same, byte for
 * byte. Shards are whole chunks dealt round-robin: shard I of N embeds
 * chunks I, I+N, I+2N, ... and `qembed merge` deals them back. */
#ifndef QEMBED_JOB_STATE_H
#define QEMBED_JOB_STATE_H

#include <stddef.h>

#define CLI_JOB_CHUNK 256 /* texts per chunk: the unit of commits and shards */

typedef struct cli_job {
    /* what the job is: a resume or a merge must match all of it */
    char options[1536];    /* model, format, dims and every option the vectors depend on */
    char input[1024];      /* the input file as given */
    long long input_size;  /* size and modification time when the job started: */
    long long input_mtime; /* a changed input is refused (ns since the epoch) */
    int shard_i, shard_n;  /* 0 and 1 when unsharded */
    /* committed progress */
    long long input_offset; /* byte after the last committed text's line */
    size_t input_line;      /* lines read up to there */
    size_t texts;           /* texts of the whole input passed (every shard's) */
    size_t rows;            /* rows in the output (gaps included) */
    long long output_bytes; /* committed length of the output */
    long long report_bytes; /* committed length of the --on-error skip report */
    size_t skipped;         /* inputs skipped (gaps) */
    int complete;           /* the output is final */
} cli_job;

/* OUTPUT.qembed-state */
void cli_job_state_path(char *buf, size_t n, const char *output);

/* 1: loaded; 0: no state file; -1: unreadable or not a state file (err). */
int cli_job_load(const char *path, cli_job *j, char *err, size_t n);

/* The same from the file's bytes (path for messages): 1, or -1 (err). */
int cli_job_parse(const char *buf, size_t len, const char *path, cli_job *j, char *err, size_t n);

/* Replaces the state file atomically and durably; 0 or -1 (err). */
int cli_job_save(const char *path, const cli_job *j, char *err, size_t n);

/* "I/N" with 0 <= I < N <= 65536; 0 or -1. */
int cli_job_parse_shard(const char *s, int *i, int *n);

/* Rows shard i of n holds for a job of `texts` texts. */
size_t cli_job_shard_rows(size_t texts, int i, int n);

#endif
