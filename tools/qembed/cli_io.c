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

int qe_reader_open(qe_reader *r, const char *path, const char *format, char **args, int n_args) {
    memset(r, 0, sizeof *r);
    r->args = args;
    r->n_args = n_args;
    if (!path) return 0;
    r->name = strcmp(path, "-") == 0 ? "standard input" : path;
    if (format) {
        if (strcmp(format, "jsonl") == 0) r->jsonl = 1;
        else if (strcmp(format, "text") == 0) r->jsonl = 0;
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
    return 0;
}

void qe_reader_close(qe_reader *r) {
    if (r->own && r->f) fclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

/* 1: a text; 0: end; -1: error. *text is malloc'ed (NUL-terminated). */
static int next_text(qe_reader *r, char **text, size_t *len, size_t *line) {
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
            if (strlen(r->buf) != l) {
                snprintf(r->err, sizeof r->err, "%s: line %zu: contains a NUL byte", r->name,
                         r->line);
                return -1;
            }
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
            snprintf(r->err, sizeof r->err, "%s: line %zu: expected one JSON string per line%s",
                     r->name, r->line, j ? " (found another JSON value)" : " (not valid JSON)");
            cJSON_Delete(j);
            return -1;
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

long qe_reader_count(qe_reader *r) {
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
    while ((k = next_text(r, &t, &len, &line)) == 1) {
        free(t);
        n++;
    }
    if (k < 0) return -1;
    clearerr(r->f);
    if (fseek(r->f, start, SEEK_SET) != 0) return -1;
    r->line = line0;
    return n;
}

int qe_reader_chunk(qe_reader *r, qe_chunk *c, size_t max, size_t first) {
    for (size_t i = 0; i < c->n; i++) free(c->texts[i]);
    c->n = 0;
    c->first = first;
    if (c->cap < max) {
        char **t = realloc(c->texts, max * sizeof *t);
        if (t) c->texts = t;
        size_t *l = realloc(c->lens, max * sizeof *l);
        if (l) c->lens = l;
        size_t *ln = realloc(c->lines, max * sizeof *ln);
        if (ln) c->lines = ln;
        if (!t || !l || !ln) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        c->cap = max;
    }
    while (c->n < max) {
        int k = next_text(r, &c->texts[c->n], &c->lens[c->n], &c->lines[c->n]);
        if (k < 0) return -1;
        if (k == 0) break;
        c->n++;
    }
    return c->n > 0;
}

void qe_chunk_free(qe_chunk *c) {
    for (size_t i = 0; i < c->n; i++) free(c->texts[i]);
    free(c->texts);
    free(c->lens);
    free(c->lines);
    memset(c, 0, sizeof *c);
}

void qe_report_input_error(const char *cmd, const qe_reader *r, const qe_chunk *c,
                           const qembed_error *e) {
    size_t k;
    int used = 0;
    if (sscanf(e->message, "input %zu%n", &k, &used) == 1 && used > 0 && k < c->n) {
        const char *rest = e->message + used;
        size_t global = c->first + k;
        if (r->f)
            fprintf(stderr, "qembed %s: input %zu (line %zu of %s)%s\n", cmd, global, c->lines[k],
                    r->name, rest);
        else
            fprintf(stderr, "qembed %s: input %zu (argument %zu)%s\n", cmd, global, global + 1,
                    rest);
        return;
    }
    fprintf(stderr, "qembed %s: %s\n", cmd, e->message);
}

/* ----------------------------------------------------------------- writer */

int qe_out_fmt_parse(const char *s, qe_out_fmt *out) {
    static const char *const names[] = {"json", "jsonl", "npy", "tsv"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (qe_out_fmt)i;
            return 0;
        }
    return -1;
}

int qe_out_fmt_from_name(const char *path, qe_out_fmt *out) {
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return -1;
    return qe_out_fmt_parse(dot + 1, out);
}

void qe_fmt_float(char *buf, size_t n, float v) {
    /* The shortest of %.6g..%.9g that reads back exactly (%.9g always does). */
    for (int p = 6; p < 9; p++) {
        snprintf(buf, n, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
    snprintf(buf, n, "%.9g", (double)v);
}

#define NPY_HEADER 128 /* fixed size, so the final shape can be patched in place */

static int npy_header(qe_writer *w, size_t rows) {
    char dict[NPY_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %d), }",
                     rows, w->dims);
    if (n < 0 || n > NPY_HEADER - 11) return -1;
    unsigned char h[NPY_HEADER];
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    unsigned hl = NPY_HEADER - 10;
    h[8] = (unsigned char)(hl & 0xff);
    h[9] = (unsigned char)(hl >> 8);
    memset(h + 10, ' ', hl);
    memcpy(h + 10, dict, (size_t)n);
    h[NPY_HEADER - 1] = '\n';
    return fwrite(h, 1, NPY_HEADER, w->f) == NPY_HEADER ? 0 : -1;
}

int qe_writer_open(qe_writer *w, const char *path, qe_out_fmt fmt, int dims, long expect_rows) {
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
        if (fmt == QE_OUT_NPY && isatty(fileno(stdout))) {
            fprintf(stderr, "qembed: refusing to write binary .npy data to a terminal (use --output FILE)\n");
            return -1;
        }
    }
    struct stat sb;
    w->seekable = fstat(fileno(w->f), &sb) == 0 && S_ISREG(sb.st_mode);
    if (fmt == QE_OUT_NPY) {
        if (!w->seekable && expect_rows < 0) {
            fprintf(stderr, "qembed: .npy output to a pipe needs the number of inputs in advance "
                            "(give a regular --input file or --output FILE)\n");
            return -1;
        }
        if (npy_header(w, expect_rows >= 0 ? (size_t)expect_rows : 0) != 0) {
            fprintf(stderr, "qembed: cannot write the .npy header\n");
            return -1;
        }
    } else if (fmt == QE_OUT_JSON) {
        fputs("[", w->f);
    }
    return 0;
}

int qe_writer_rows(qe_writer *w, const float *v, size_t n) {
    for (size_t r = 0; r < n; r++, w->rows++) {
        const float *row = v + r * (size_t)w->dims;
        switch (w->fmt) {
        case QE_OUT_NPY:
            if (fwrite(row, sizeof(float), (size_t)w->dims, w->f) != (size_t)w->dims) return -1;
            break;
        case QE_OUT_TSV:
            for (int j = 0; j < w->dims; j++) {
                qe_fmt_float(w->num, sizeof w->num, row[j]);
                fputs(w->num, w->f);
                fputc(j + 1 < w->dims ? '\t' : '\n', w->f);
            }
            break;
        case QE_OUT_JSON:
        case QE_OUT_JSONL:
            if (w->fmt == QE_OUT_JSON) fputs(w->rows ? ",\n" : "\n", w->f);
            fputc('[', w->f);
            for (int j = 0; j < w->dims; j++) {
                qe_fmt_float(w->num, sizeof w->num, row[j]);
                if (j) fputc(',', w->f);
                fputs(w->num, w->f);
            }
            fputc(']', w->f);
            if (w->fmt == QE_OUT_JSONL) fputc('\n', w->f);
            break;
        }
    }
    return ferror(w->f) ? -1 : 0;
}

int qe_writer_close(qe_writer *w) {
    int rc = 0;
    if (w->fmt == QE_OUT_JSON) fputs(w->rows ? "\n]\n" : "]\n", w->f);
    if (w->fmt == QE_OUT_NPY) {
        if (w->seekable) {
            if (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 || npy_header(w, w->rows) != 0)
                rc = -1;
        } else if (w->expect_rows != (long)w->rows) {
            rc = -1; /* the announced shape is wrong: the inputs changed while reading */
        }
    }
    if (fflush(w->f) != 0 || ferror(w->f)) rc = -1;
    if (w->own && fclose(w->f) != 0) rc = -1;
    if (rc) fprintf(stderr, "qembed: error writing the output\n");
    return rc;
}
