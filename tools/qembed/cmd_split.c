/* `qembed split`: writes a model as self-contained segment files of
 * contiguous layers plus manifest.json (see src/model/segments.h), so each
 * segment can be stored, shipped and placed separately. Public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
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

enum { OPT_MAX_SEGMENTS = 256, OPT_MAX_SEGMENT_BYTES };

static const cli_optdef split_opts[] = {
    {"help", 'h', 0},
    {"output", 'o', 1},
    {"max-segments", OPT_MAX_SEGMENTS, 1},
    {"max-segment-bytes", OPT_MAX_SEGMENT_BYTES, 1},
    {NULL, 0, 0},
};

static void log_stderr(qembed_log_level level, const char *line, void *user) {
    (void)user;
    static const char *const tag[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    fprintf(stderr, "qembed %s: %s\n", tag[level >= 0 && level <= 3 ? level : 1], line);
}

int cmd_split(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    const char *out = NULL;
    qembed_split_params p = qembed_split_default_params();
    cli_args ap;
    cli_args_init(&ap, "split", argc, argv, split_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *v = ap.value;
        switch (k) {
            case CLI_ARG_ERROR: return 1;
            case 'h':
                fputs(split_usage, stdout);
                fputs(cli_settings_help, stdout);
                return 0;
            case 'o': out = v; break;
            case OPT_MAX_SEGMENTS: {
                long n;
                if (cli_parse_long(v, 1, 1024, &n) != 0) {
                    fprintf(stderr, "qembed split: --max-segments: '%s' is not a count (1 to 1024)\n", v);
                    return 1;
                }
                p.max_segments = (int)n;
                break;
            }
            case OPT_MAX_SEGMENT_BYTES:
                if (cli_parse_bytes(v, &p.max_segment_bytes) != 0 || !p.max_segment_bytes) {
                    fprintf(stderr,
                            "qembed split: --max-segment-bytes: '%s' is not a byte size (e.g. 512M)\n", v);
                    return 1;
                }
                break;
            default: /* an operand */
                fprintf(stderr, "qembed split: unexpected argument '%s' (see qembed split --help)\n", v);
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
