/* `qembed split`: writes a model as self-contained segment files of
 * contiguous layers plus manifest.json (see src/model/segments.h), so each
 * segment can be stored, shipped and placed separately. Public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const char *const split_usage =
    "usage: qembed split -m MODEL -o DIR (--max-segments N | --max-segment-bytes B)\n"
    "\n"
    "Writes MODEL as segment files of contiguous layers into DIR (the first also holds the\n"
    "token embedding, the last the final norm), plus manifest.json (model config, segment\n"
    "order, layer ranges, sizes, SHA-256 of every file) and copies of config.json and the\n"
    "tokenizer files. DIR then loads anywhere a model directory does (-m DIR); its\n"
    "segments are verified (SHA-256) at load.\n"
    "\n"
    "  -o, --output DIR            output directory (created; must hold no manifest.json)\n"
    "      --max-segments N        N segments, balanced by bytes (at most one per layer)\n"
    "      --max-segment-bytes B   as few segments as keep each file at most B (e.g. 512M)\n"
    "\n";

static void log_stderr(qembed_log_level level, const char *line, void *user) {
    (void)user;
    static const char *const tag[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    fprintf(stderr, "qembed %s: %s\n", tag[level >= 0 && level <= 3 ? level : 1], line);
}

int cmd_split(int argc, char **argv) {
    qe_settings s;
    qe_settings_init(&s);
    const char *out = NULL;
    qembed_split_params p = qembed_split_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(split_usage, stdout);
            fputs(qe_settings_help, stdout);
            return 0;
        }
        int r = qe_settings_flag(&s, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--max-segments") && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || n < 1 || n > 1024) {
                fprintf(stderr, "qembed split: --max-segments: '%s' is not a count (1 to 1024)\n",
                        argv[i]);
                return 1;
            }
            p.max_segments = (int)n;
        } else if (!strcmp(a, "--max-segment-bytes") && i + 1 < argc) {
            if (qe_parse_bytes(argv[++i], &p.max_segment_bytes) != 0 || !p.max_segment_bytes) {
                fprintf(stderr, "qembed split: --max-segment-bytes: '%s' is not a byte size (e.g. 512M)\n",
                        argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "qembed split: unknown or incomplete option '%s' (see qembed split --help)\n", a);
            return 1;
        }
    }
    if (!out) {
        fprintf(stderr, "qembed split: -o DIR is required (see qembed split --help)\n");
        return 1;
    }
    if ((p.max_segments > 0) == (p.max_segment_bytes > 0)) {
        fprintf(stderr, "qembed split: give exactly one of --max-segments and --max-segment-bytes\n");
        return 1;
    }
    if (s.error[0]) {
        fprintf(stderr, "qembed split: %s\n", s.error);
        return 1;
    }
    if (!s.model[0]) {
        fprintf(stderr, "qembed split: -m MODEL is required\n");
        return 1;
    }
    p.log_fn = log_stderr;
    p.log_level = s.verbose ? QEMBED_LOG_DEBUG : s.quiet ? QEMBED_LOG_WARN : QEMBED_LOG_INFO;
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status st = qembed_model_split(s.model, out, &p, &e);
    if (st != QEMBED_OK) {
        fprintf(stderr, "qembed split: error: %s: %s\n", qembed_status_str(st), e.message);
        return 2;
    }
    return 0;
}
