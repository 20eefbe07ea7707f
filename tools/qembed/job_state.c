/* The bulk job's state file (job_state.h): one small JSON object, written
 * whole to a temporary file and renamed over the old one, so a reader sees
 * the previous state or the new one, never a mix. */
#include "job_state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_VERSION 1

void cli_job_state_path(char *buf, size_t n, const char *output) {
    snprintf(buf, n, "%s.qembed-state", output);
}

static int num(const cJSON *o, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    /* a whole number a double holds exactly; anything else would overflow the casts */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return -1;
    *out = v->valuedouble;
    return 0;
}

int cli_job_load(const char *path, cli_job *j, char *err, size_t n) {
    memset(j, 0, sizeof *j);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, n, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        snprintf(err, n, "%s: read error", path);
        return -1;
    }
    buf[len] = '\0';
    return cli_job_parse(buf, len, path, j, err, n);
}

int cli_job_parse(const char *buf, size_t len, const char *path, cli_job *j, char *err, size_t n) {
    memset(j, 0, sizeof *j);
    cJSON *o = cJSON_ParseWithLength(buf, len);
    double d[11] = {0};
    static const char *const keys[] = {"version", "input_size",   "input_mtime_s", "shard_i",
                                       "shard_n", "input_offset", "input_line",    "texts",
                                       "rows",    "output_bytes", "report_bytes"};
    int bad = !cJSON_IsObject(o);
    for (int k = 0; !bad && k < 11; k++) bad = num(o, keys[k], &d[k]) != 0;
    const cJSON *opt = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, "options");
    const cJSON *in = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, "input");
    double sk, ns;
    bad = bad || num(o, "skipped", &sk) != 0 || num(o, "input_mtime_ns", &ns) != 0;
    const cJSON *done = bad ? NULL : cJSON_GetObjectItemCaseSensitive(o, "complete");
    if (bad || !cJSON_IsString(opt) || !cJSON_IsString(in) || ns >= 1e9 || d[2] >= 9e9 ||
        !cJSON_IsBool(done) || d[0] != STATE_VERSION || d[4] < 1 || d[4] > 65536 || d[3] >= d[4]) {
        cJSON_Delete(o);
        snprintf(err, n, "%s: not a qembed state file (or another version); remove it to start over", path);
        return -1;
    }
    snprintf(j->options, sizeof j->options, "%s", opt->valuestring);
    snprintf(j->input, sizeof j->input, "%s", in->valuestring);
    j->input_size = (long long)d[1];
    j->input_mtime = (long long)d[2] * 1000000000LL + (long long)ns;
    j->shard_i = (int)d[3];
    j->shard_n = (int)d[4];
    j->input_offset = (long long)d[5];
    j->input_line = (size_t)d[6];
    j->texts = (size_t)d[7];
    j->rows = (size_t)d[8];
    j->output_bytes = (long long)d[9];
    j->report_bytes = (long long)d[10];
    j->skipped = (size_t)sk;
    j->complete = cJSON_IsTrue(done);
    cJSON_Delete(o);
    return 1;
}

/* fsync of the folder holding path, so the rename itself is durable */
static int sync_dir(const char *path) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cli_job_save(const char *path, const cli_job *j, char *err, size_t n) {
    cJSON *o = cJSON_CreateObject();
    /* every count is an integer below 2^53: exact as a JSON number */
    cJSON_AddNumberToObject(o, "version", STATE_VERSION);
    cJSON_AddStringToObject(o, "options", j->options);
    cJSON_AddStringToObject(o, "input", j->input);
    cJSON_AddNumberToObject(o, "input_size", (double)j->input_size);
    /* seconds and nanoseconds apart: their sum in ns exceeds 2^53 */
    cJSON_AddNumberToObject(o, "input_mtime_s", (double)(j->input_mtime / 1000000000LL));
    cJSON_AddNumberToObject(o, "input_mtime_ns", (double)(j->input_mtime % 1000000000LL));
    cJSON_AddNumberToObject(o, "shard_i", j->shard_i);
    cJSON_AddNumberToObject(o, "shard_n", j->shard_n);
    cJSON_AddNumberToObject(o, "input_offset", (double)j->input_offset);
    cJSON_AddNumberToObject(o, "input_line", (double)j->input_line);
    cJSON_AddNumberToObject(o, "texts", (double)j->texts);
    cJSON_AddNumberToObject(o, "rows", (double)j->rows);
    cJSON_AddNumberToObject(o, "output_bytes", (double)j->output_bytes);
    cJSON_AddNumberToObject(o, "report_bytes", (double)j->report_bytes);
    cJSON_AddNumberToObject(o, "skipped", (double)j->skipped);
    cJSON_AddBoolToObject(o, "complete", j->complete);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok || rename(tmp, path) != 0 || sync_dir(path) != 0) {
        snprintf(err, n, "%s: cannot write the state file: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cli_job_parse_shard(const char *s, int *i, int *n) {
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/' || errno) return -1;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || errno || b < 1 || b > 65536 || a < 0 || a >= b) return -1;
    *i = (int)a;
    *n = (int)b;
    return 0;
}

size_t cli_job_shard_rows(size_t texts, int i, int n) {
    size_t chunks = (texts + CLI_JOB_CHUNK - 1) / CLI_JOB_CHUNK, rows = 0;
    for (size_t c = (size_t)i; c < chunks; c += (size_t)n)
        rows += c + 1 < chunks ? CLI_JOB_CHUNK : texts - c * CLI_JOB_CHUNK;
    return rows;
}
