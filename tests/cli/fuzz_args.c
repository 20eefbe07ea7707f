/* libFuzzer target: the CLI's argument parser (args.c over getopt_long, with
 * the shared settings' options) on arbitrary argument vectors: the bytes
 * split at NUL into argv. Every option or operand handed back must be one of
 * the table's keys or an argv element, and parsing always ends. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

/* Run with -close_fd_mask=2: the usage messages are expected and many. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { K_FMT = 256, K_FLAG };
static const cli_optdef opts[] = {
    {"help", 'h', 0},       {"input", 'i', 1},   {"format", 'f', 1},
    {"format-x", K_FMT, 1}, {"flag", K_FLAG, 0}, {NULL, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[130];
    int argc = 0;
    argv[argc++] = "cmd";
    for (size_t i = 0; i <= size && argc < 129;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    char *orig[130];
    memcpy(orig, argv, sizeof argv);
    cli_settings s;
    memset(&s, 0, sizeof s);
    cli_args a;
    cli_args_init(&a, "fuzz", argc, argv, opts, &s);
    int k, steps = 0;
    while ((k = cli_args_next(&a)) != CLI_ARG_END && k != CLI_ARG_ERROR) {
        if (++steps > (int)size + argc + 2) abort(); /* each step consumes an element or a letter */
        if (k == CLI_ARG_OPERAND || k == 'i' || k == 'f' || k == K_FMT) {
            int found = 0; /* the value lies inside one of the elements */
            for (int j = 0; j < argc; j++)
                if (a.value >= orig[j] && a.value <= orig[j] + strlen(orig[j])) found = 1;
            if (!found) abort();
        } else if (k != 'h' && k != K_FLAG) {
            abort();
        }
    }
    free(buf);
    return 0;
}
