/* qembed merge: joins the parts of a sharded bulk job (`qembed embed
 * --shard I/N`) into the file one unsharded run writes, byte for byte. The
 * parts hold whole chunks of CLI_JOB_CHUNK texts dealt round-robin
 * (job_state.h), so merging deals them back: chunk c comes from part c mod N.
 * Each part's state file says it is complete, which shard it is, and the
 * job it belongs to; all of that is checked before anything is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli_io.h"
#include "commands.h"
#include "job_state.h"

static const char *const merge_help =
    "usage: qembed merge -o OUTPUT PART0 PART1 ... PARTN-1\n"
    "\n"
    "Joins the outputs of `qembed embed --shard I/N` (given in shard order, 0 to N-1, each with\n"
    "its PART.qembed-state beside it) into the output one unsharded run writes: the same bytes.\n"
    "The parts must be complete, of one job (same input, model and options) and one format\n"
    "(.npy, .jsonl or .tsv, the output's too).\n"
    "\n"
    "  -o, --output FILE       the merged output (required)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 a part is missing, incomplete or of another job.\n";

static const cli_optdef merge_opts[] = {{"help", 'h', 0}, {"output", 'o', 1}, {NULL, 0, 0}};

typedef struct part {
    const char *path;
    FILE *f;
    cli_job job;
} part;

/* Copies n rows of a part: n * dims floats of .npy, or n lines. */
static int copy_rows(part *p, FILE *out, cli_out_fmt fmt, int dims, size_t n, char **line, size_t *cap) {
    if (fmt == CLI_OUT_NPY) {
        char buf[1 << 16];
        size_t left = n * (size_t)dims * sizeof(float);
        while (left) {
            size_t k = left < sizeof buf ? left : sizeof buf;
            if (fread(buf, 1, k, p->f) != k || fwrite(buf, 1, k, out) != k) return -1;
            left -= k;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        ssize_t k = getline(line, cap, p->f);
        if (k <= 0 || (*line)[k - 1] != '\n' || fwrite(*line, 1, (size_t)k, out) != (size_t)k) return -1;
    }
    return 0;
}

int cmd_merge(int argc, char **argv) {
    const char *output = NULL;
    part *parts = calloc((size_t)argc + 1, sizeof *parts);
    int n = 0, rc = 1, dims = 0, created = 0;
    FILE *out = NULL;
    char *line = NULL;
    size_t cap = 0;
    if (!parts) return 2;
    cli_args ap;
    cli_args_init(&ap, "merge", argc, argv, merge_opts, NULL);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        switch (k) {
            case CLI_ARG_ERROR: goto done;
            case 'h':
                fputs(merge_help, stdout);
                rc = 0;
                goto done;
            case 'o': output = ap.value; break;
            default: parts[n++].path = ap.value; break;
        }
    }
    cli_out_fmt fmt;
    if (!output || n == 0) {
        fprintf(stderr, "qembed merge: give -o OUTPUT and the parts (see qembed merge --help)\n");
        goto done;
    }
    if (cli_out_fmt_from_name(output, &fmt) != 0 || fmt == CLI_OUT_JSON) {
        fprintf(stderr, "qembed merge: -o %s: expected a .npy, .jsonl or .tsv name\n", output);
        goto done;
    }
    rc = 2;
    for (int i = 0; i < n; i++) {
        part *p = &parts[i];
        char state[4096], err[700];
        cli_out_fmt pf;
        cli_job_state_path(state, sizeof state, p->path);
        int have = cli_job_load(state, &p->job, err, sizeof err);
        if (have < 0) {
            fprintf(stderr, "qembed merge: %s\n", err);
            goto done;
        }
        if (have == 0) {
            fprintf(stderr,
                    "qembed merge: %s: no state file %s: merge joins the parts of "
                    "`qembed embed --shard I/N`\n",
                    p->path, state);
            goto done;
        }
        const cli_job *j = &p->job, *j0 = &parts[0].job;
        const char *why =
            !j->complete      ? "is not complete (resume its job with --resume)"
            : j->shard_n != n ? "belongs to a job of another shard count"
            : j->shard_i != i ? "is another shard (give the parts in order 0 to N-1)"
            : strcmp(j->options, j0->options) || strcmp(j->input, j0->input) ||
                    j->input_size != j0->input_size || j->input_mtime != j0->input_mtime
                ? "belongs to another job (input or options differ from the first part's)"
            : j->texts != j0->texts ? "counted another number of texts than the first part"
            : j->rows != cli_job_shard_rows(j->texts, i, n) ? "has the wrong number of rows for its shard"
            : cli_out_fmt_from_name(p->path, &pf) != 0 || pf != fmt ? "is not in the output's format"
                                                                    : NULL;
        if (why) {
            fprintf(stderr, "qembed merge: %s (shard %d/%d of the state file) %s\n", p->path, j->shard_i,
                    j->shard_n, why);
            goto done;
        }
        if (!(p->f = fopen(p->path, "rb"))) {
            fprintf(stderr, "qembed merge: %s: cannot open: %m\n", p->path);
            goto done;
        }
        if (fmt == CLI_OUT_NPY) {
            size_t rows;
            int d;
            if (cli_npy_read_header(p->f, &rows, &d) != 0 || rows != j->rows || (i && d != dims)) {
                fprintf(stderr, "qembed merge: %s: not the .npy its state file describes (%zu rows%s)\n",
                        p->path, j->rows, i ? ", the first part's width" : "");
                goto done;
            }
            dims = d;
        }
    }
    if (!(out = fopen(output, "wb"))) {
        fprintf(stderr, "qembed merge: %s: cannot create: %m\n", output);
        goto done;
    }
    created = 1;
    size_t texts = parts[0].job.texts;
    if (fmt == CLI_OUT_NPY && cli_npy_header(out, texts, dims) != 0) goto write_error;
    for (size_t c = 0; c * CLI_JOB_CHUNK < texts; c++) {
        size_t rows = texts - c * CLI_JOB_CHUNK < CLI_JOB_CHUNK ? texts - c * CLI_JOB_CHUNK : CLI_JOB_CHUNK;
        part *p = &parts[c % (size_t)n];
        if (copy_rows(p, out, fmt, dims, rows, &line, &cap) != 0) {
            fprintf(stderr, "qembed merge: %s: shorter than its state file says (chunk %zu)\n", p->path, c);
            goto done;
        }
    }
    for (int i = 0; i < n; i++)
        if (fgetc(parts[i].f) != EOF) {
            fprintf(stderr, "qembed merge: %s: longer than its state file says\n", parts[i].path);
            goto done;
        }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) goto write_error;
    if (fclose(out) != 0) {
        out = NULL;
        goto write_error;
    }
    out = NULL;
    rc = 0;
    goto done;
write_error:
    fprintf(stderr, "qembed merge: %s: write error: %m\n", output);
done:
    if (out) fclose(out);
    if (rc != 0 && created) unlink(output); /* no partial result left to be mistaken for one */
    for (int i = 0; i < n; i++)
        if (parts[i].f) fclose(parts[i].f);
    free(line);
    free(parts);
    return rc;
}
