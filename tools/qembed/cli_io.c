#include "cli_io.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ----------------------------------------------------------------- reader */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int cli_reader_open(cli_reader *r, const char *path, const char *format, char **args, int n_args) {
    memset(r, 0, sizeof *r);
    r->args = args;
    r->n_args = n_args;
    if (!path) return 0;
    r->name = strcmp(path, "-") == 0 ? "standard input" : path;
    if (format) {
        if (strcmp(format, "jsonl") == 0)
            r->jsonl = 1;
        else if (strcmp(format, "text") == 0)
            r->jsonl = 0;
        else {
            snprintf(r->err, sizeof r->err, "--input-format '%s': expected text or jsonl", format);
            return -1;
        }
    } else {
        r->jsonl = ends_with(path, ".jsonl");
    }
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
        return 0;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(r->err, sizeof r->err, "%s: is a directory, expected a text file", path);
        return -1;
    }
    r->f = fopen(path, "rb");
    if (!r->f) {
        snprintf(r->err, sizeof r->err, "%s: cannot open: %m", path);
        return -1;
    }
    r->own = 1;
    if (fstat(fileno(r->f), &sb) == 0 && S_ISREG(sb.st_mode)) r->size = (long long)sb.st_size;
    return 0;
}

void cli_reader_close(cli_reader *r) {
    if (r->own && r->f) fclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

/* A line that cannot be a text: an error, or with skip_bad a text with a
 * reason (r->err) and an empty body, so the job goes on and records it. */
static int bad_line(cli_reader *r, const char *reason, char **text, size_t *len, size_t *line) {
    if (!r->skip_bad) {
        snprintf(r->err, sizeof r->err, "%s: line %zu: %s", r->name, r->line, reason);
        return -1;
    }
    snprintf(r->err, sizeof r->err, "%s", reason);
    *text = strdup("");
    *len = 0;
    *line = r->line;
    if (!*text) {
        snprintf(r->err, sizeof r->err, "out of memory");
        return -1;
    }
    return 2;
}

/* 1: a text; 2: a bad line with skip_bad (r->err says why); 0: end; -1:
 * error. *text is malloc'ed (NUL-terminated). */
static int next_text(cli_reader *r, char **text, size_t *len, size_t *line) {
    if (!r->f) {
        if (r->next_arg >= r->n_args) return 0;
        const char *a = r->args[r->next_arg++];
        *len = strlen(a);
        *text = strdup(a);
        *line = 0;
        if (!*text) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        return 1;
    }
    for (;;) {
        ssize_t n = getline(&r->buf, &r->buf_cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) {
                snprintf(r->err, sizeof r->err, "%s: read error after line %zu", r->name, r->line);
                return -1;
            }
            return 0;
        }
        r->line++;
        size_t l = (size_t)n;
        if (l && r->buf[l - 1] == '\n') l--;
        if (l && r->buf[l - 1] == '\r') l--;
        r->buf[l] = '\0';
        if (!r->jsonl) {
            /* getline keeps NUL bytes; the text is what precedes the first one
             * only if there is one, which we reject rather than cut silently. */
            if (strlen(r->buf) != l) return bad_line(r, "contains a NUL byte", text, len, line);
            *text = malloc(l + 1);
            if (!*text) {
                snprintf(r->err, sizeof r->err, "out of memory");
                return -1;
            }
            memcpy(*text, r->buf, l + 1);
            *len = l;
            *line = r->line;
            return 1;
        }
        const char *p = r->buf;
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) continue; /* blank JSONL line */
        cJSON *j = cJSON_ParseWithLength(r->buf, l);
        if (!j || !cJSON_IsString(j)) {
            int other = j != NULL;
            cJSON_Delete(j);
            return bad_line(r,
                            other ? "expected one JSON string per line (found another JSON value)"
                                  : "expected one JSON string per line (not valid JSON)",
                            text, len, line);
        }
        *text = strdup(j->valuestring);
        cJSON_Delete(j);
        if (!*text) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        *len = strlen(*text);
        *line = r->line;
        return 1;
    }
}

long cli_reader_count(cli_reader *r) {
    if (!r->f) return r->n_args;
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
    long start = ftell(r->f);
    if (start < 0) return -1;
    long n = 0;
    size_t line0 = r->line;
    char *t;
    size_t len, line;
    int k;
    while ((k = next_text(r, &t, &len, &line)) >= 1) {
        free(t);
        n++;
    }
    if (k < 0) return -1;
    clearerr(r->f);
    if (fseek(r->f, start, SEEK_SET) != 0) return -1;
    r->line = line0;
    return n;
}

long long cli_reader_tell(cli_reader *r) {
    return r->f ? (long long)ftello(r->f) : -1;
}

int cli_reader_seek(cli_reader *r, long long offset, size_t line) {
    if (!r->f || fseeko(r->f, (off_t)offset, SEEK_SET) != 0) {
        snprintf(r->err, sizeof r->err, "%s: cannot seek to byte %lld to resume", r->name ? r->name : "input",
                 offset);
        return -1;
    }
    r->line = line;
    return 0;
}

long cli_reader_skip(cli_reader *r, size_t max) {
    if (!r->f) { /* arguments */
        long n = 0;
        while ((size_t)n < max && r->next_arg < r->n_args) r->next_arg++, n++;
        return n;
    }
    long n = 0;
    while ((size_t)n < max) {
        ssize_t got = getline(&r->buf, &r->buf_cap, r->f);
        if (got < 0) {
            if (ferror(r->f)) {
                snprintf(r->err, sizeof r->err, "%s: read error after line %zu", r->name, r->line);
                return -1;
            }
            break;
        }
        r->line++;
        if (r->jsonl) { /* a blank line is no text (as in next_text) */
            ssize_t i = 0;
            while (i < got && isspace((unsigned char)r->buf[i])) i++;
            if (i == got) continue;
        }
        n++;
    }
    return n;
}

int cli_reader_chunk(cli_reader *r, cli_chunk *c, size_t max, size_t first) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->texts[i]);
        if (c->why) {
            free(c->why[i]);
            c->why[i] = NULL;
        }
    }
    c->n = 0;
    c->first = first;
    if (c->cap < max) {
        char **t = realloc(c->texts, max * sizeof *t);
        if (t) c->texts = t;
        size_t *l = realloc(c->lens, max * sizeof *l);
        if (l) c->lens = l;
        size_t *ln = realloc(c->lines, max * sizeof *ln);
        if (ln) c->lines = ln;
        char **w = realloc(c->why, max * sizeof *w);
        if (w) {
            c->why = w;
            for (size_t i = c->cap; i < max; i++) w[i] = NULL;
        }
        if (!t || !l || !ln || !w) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        c->cap = max;
    }
    while (c->n < max) {
        int k = next_text(r, &c->texts[c->n], &c->lens[c->n], &c->lines[c->n]);
        if (k < 0) return -1;
        if (k == 0) break;
        if (k == 2 && !(c->why[c->n] = strdup(r->err))) {
            free(c->texts[c->n]);
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        c->n++;
    }
    return c->n > 0;
}

void cli_chunk_free(cli_chunk *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->texts[i]);
        if (c->why) free(c->why[i]);
    }
    free(c->why);
    free(c->texts);
    free(c->lens);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

void cli_report_input_error(const char *cmd, const cli_reader *r, const cli_chunk *c, const qembed_error *e) {
    size_t k;
    int used = 0;
    if (sscanf(e->message, "input %zu%n", &k, &used) == 1 && used > 0 && k < c->n) {
        const char *rest = e->message + used;
        size_t global = c->first + k;
        if (r->f)
            fprintf(stderr, "qembed %s: input %zu (line %zu of %s)%s\n", cmd, global, c->lines[k], r->name,
                    rest);
        else
            fprintf(stderr, "qembed %s: input %zu (argument %zu)%s\n", cmd, global, global + 1, rest);
        return;
    }
    fprintf(stderr, "qembed %s: %s\n", cmd, e->message);
}

/* ----------------------------------------------------------------- writer */

int cli_out_fmt_parse(const char *s, cli_out_fmt *out) {
    static const char *const names[] = {"json", "jsonl", "npy", "tsv"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (cli_out_fmt)i;
            return 0;
        }
    return -1;
}

int cli_out_fmt_from_name(const char *path, cli_out_fmt *out) {
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return -1;
    return cli_out_fmt_parse(dot + 1, out);
}

void cli_fmt_float(char *buf, size_t n, float v) {
    /* The shortest of %.6g..%.9g that reads back exactly (%.9g always does). */
    for (int p = 6; p < 9; p++) {
        snprintf(buf, n, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
    snprintf(buf, n, "%.9g", (double)v);
}

#define NPY_HEADER 128 /* fixed size, so the final shape can be patched in place */

static int npy_header(cli_writer *w, size_t rows) {
    return cli_npy_header(w->f, rows, w->dims);
}

static int npy_header_bytes(unsigned char h[NPY_HEADER], size_t rows, int dims) {
    char dict[NPY_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %d), }",
                     rows, dims);
    if (n < 0 || n > NPY_HEADER - 11) return -1;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    unsigned hl = NPY_HEADER - 10;
    h[8] = (unsigned char)(hl & 0xff);
    h[9] = (unsigned char)(hl >> 8);
    memset(h + 10, ' ', hl);
    memcpy(h + 10, dict, (size_t)n);
    h[NPY_HEADER - 1] = '\n';
    return 0;
}

int cli_npy_header(FILE *f, size_t rows, int dims) {
    unsigned char h[NPY_HEADER];
    if (npy_header_bytes(h, rows, dims) != 0) return -1;
    return fwrite(h, 1, NPY_HEADER, f) == NPY_HEADER ? 0 : -1;
}

int cli_npy_read_header(FILE *f, size_t *rows, int *dims) {
    unsigned char h[NPY_HEADER + 1];
    if (fread(h, 1, NPY_HEADER, f) != NPY_HEADER || memcmp(h, "\x93NUMPY\x01\x00", 8) != 0 ||
        h[8] + 256u * h[9] != NPY_HEADER - 10)
        return -1;
    h[NPY_HEADER] = '\0';
    const char *shape = strstr((const char *)h + 10, "'shape': (");
    if (!strstr((const char *)h + 10, "'descr': '<f4', 'fortran_order': False") || !shape ||
        sscanf(shape, "'shape': (%zu, %d)", rows, dims) != 2 || *dims < 1)
        return -1;
    return 0;
}

int cli_writer_open(cli_writer *w, const char *path, cli_out_fmt fmt, int dims, long expect_rows) {
    memset(w, 0, sizeof *w);
    w->fmt = fmt;
    w->dims = dims;
    w->expect_rows = expect_rows;
    if (path && strcmp(path, "-") != 0) {
        w->f = fopen(path, "wb");
        if (!w->f) {
            fprintf(stderr, "qembed: %s: cannot create the output file: %m\n", path);
            return -1;
        }
        w->own = 1;
    } else {
        w->f = stdout;
        if (fmt == CLI_OUT_NPY && isatty(fileno(stdout))) {
            fprintf(stderr, "qembed: refusing to write binary .npy data to a terminal (use --output FILE)\n");
            return -1;
        }
    }
    struct stat sb;
    w->seekable = fstat(fileno(w->f), &sb) == 0 && S_ISREG(sb.st_mode);
    if (fmt == CLI_OUT_NPY) {
        if (!w->seekable && expect_rows < 0) {
            fprintf(stderr, "qembed: .npy output to a pipe needs the number of inputs in advance "
                            "(give a regular --input file or --output FILE)\n");
            return -1;
        }
        if (npy_header(w, expect_rows >= 0 ? (size_t)expect_rows : 0) != 0) {
            fprintf(stderr, "qembed: cannot write the .npy header\n");
            return -1;
        }
    } else if (fmt == CLI_OUT_JSON) {
        fputs("[", w->f);
    }
    return 0;
}

int cli_writer_rows(cli_writer *w, const float *v, size_t n) {
    for (size_t r = 0; r < n; r++, w->rows++) {
        const float *row = v + r * (size_t)w->dims;
        switch (w->fmt) {
            case CLI_OUT_NPY:
                if (fwrite(row, sizeof(float), (size_t)w->dims, w->f) != (size_t)w->dims) return -1;
                break;
            case CLI_OUT_TSV:
                for (int j = 0; j < w->dims; j++) {
                    cli_fmt_float(w->num, sizeof w->num, row[j]);
                    fputs(w->num, w->f);
                    fputc(j + 1 < w->dims ? '\t' : '\n', w->f);
                }
                break;
            case CLI_OUT_JSON:
            case CLI_OUT_JSONL:
                if (w->fmt == CLI_OUT_JSON) fputs(w->rows ? ",\n" : "\n", w->f);
                fputc('[', w->f);
                for (int j = 0; j < w->dims; j++) {
                    cli_fmt_float(w->num, sizeof w->num, row[j]);
                    if (j) fputc(',', w->f);
                    fputs(w->num, w->f);
                }
                fputc(']', w->f);
                if (w->fmt == CLI_OUT_JSONL) fputc('\n', w->f);
                break;
        }
    }
    return ferror(w->f) ? -1 : 0;
}

int cli_writer_gap(cli_writer *w) {
    switch (w->fmt) {
        case CLI_OUT_NPY: {
            float nan = __builtin_nanf("");
            for (int j = 0; j < w->dims; j++)
                if (fwrite(&nan, sizeof nan, 1, w->f) != 1) return -1;
            break;
        }
        case CLI_OUT_TSV:
            for (int j = 0; j < w->dims; j++) fputs(j + 1 < w->dims ? "nan\t" : "nan\n", w->f);
            break;
        case CLI_OUT_JSON: fputs(w->rows ? ",\nnull" : "\nnull", w->f); break;
        case CLI_OUT_JSONL: fputs("null\n", w->f); break;
    }
    w->rows++;
    return ferror(w->f) ? -1 : 0;
}

int cli_writer_reopen(cli_writer *w, const char *path, cli_out_fmt fmt, int dims, size_t rows,
                      long long bytes) {
    if (bytes == 0) return cli_writer_open(w, path, fmt, dims, -1);
    memset(w, 0, sizeof *w);
    w->fmt = fmt;
    w->dims = dims;
    w->expect_rows = -1;
    w->rows = rows;
    w->f = fopen(path, "r+b");
    if (!w->f) {
        fprintf(stderr, "qembed: %s: cannot reopen the output to resume: %m\n", path);
        return -1;
    }
    w->own = 1;
    w->seekable = 1;
    struct stat sb;
    if (fstat(fileno(w->f), &sb) != 0 || (long long)sb.st_size < bytes) {
        fprintf(stderr,
                "qembed: %s: shorter (%lld bytes) than its state file says was committed "
                "(%lld): the output was changed since; remove both to start over\n",
                path, (long long)sb.st_size, bytes);
        fclose(w->f);
        w->f = NULL;
        return -1;
    }
    /* what was written after the last commit is redone */
    if (ftruncate(fileno(w->f), (off_t)bytes) != 0 || fseeko(w->f, 0, SEEK_END) != 0) {
        fprintf(stderr, "qembed: %s: cannot cut back to the committed %lld bytes: %m\n", path, bytes);
        fclose(w->f);
        w->f = NULL;
        return -1;
    }
    return 0;
}

int cli_writer_commit(cli_writer *w, long long *bytes) {
    if (fflush(w->f) != 0 || ferror(w->f)) return -1;
    if (w->fmt == CLI_OUT_NPY && w->seekable) {
        /* the shape so far, so a killed job's output is a valid .npy of its committed rows */
        unsigned char h[NPY_HEADER];
        if (npy_header_bytes(h, w->rows, w->dims) != 0 ||
            pwrite(fileno(w->f), h, NPY_HEADER, 0) != NPY_HEADER)
            return -1;
    }
    if (fsync(fileno(w->f)) != 0) return -1;
    off_t end = ftello(w->f);
    if (end < 0) return -1;
    *bytes = (long long)end;
    return 0;
}

int cli_writer_close(cli_writer *w) {
    int rc = 0;
    if (w->fmt == CLI_OUT_JSON) fputs(w->rows ? "\n]\n" : "]\n", w->f);
    if (w->fmt == CLI_OUT_NPY) {
        if (w->seekable) {
            if (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 || npy_header(w, w->rows) != 0) rc = -1;
        } else if (w->expect_rows != (long)w->rows) {
            rc = -1; /* the announced shape is wrong: the inputs changed while reading */
        }
    }
    if (fflush(w->f) != 0 || ferror(w->f)) rc = -1;
    if (w->own && w->seekable && fsync(fileno(w->f)) != 0) rc = -1; /* durable, as commits are */
    if (w->own && fclose(w->f) != 0) rc = -1;
    if (rc) fprintf(stderr, "qembed: error writing the output\n");
    return rc;
}
