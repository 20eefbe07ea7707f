/* qembed info: what model this is, how big, where it runs, and why (the
 * effective settings with their sources). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static const char *const info_help =
    "usage: qembed info [options]\n"
    "\n"
    "Loads the model and prints its configuration, parameter count, weight bytes, memory in use,\n"
    "dtype, whether it is synthetic, the placement of its layers, and the effective settings with\n"
    "where each came from.\n"
    "\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 success, 1 usage error, 2 model error.\n";

static void mib(char *buf, size_t n, unsigned long long b) {
    snprintf(buf, n, "%.1f MiB (%llu bytes)", (double)b / (1024.0 * 1024.0), b);
}

static const cli_optdef info_opts[] = {{"help", 'h', 0}, {NULL, 0, 0}};

int cmd_info(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    cli_args ap;
    cli_args_init(&ap, "info", argc, argv, info_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        if (k == CLI_ARG_ERROR) return 1;
        if (k == 'h') {
            fputs(info_help, stdout);
            fputc('\n', stdout);
            fputs(cli_settings_help, stdout);
            return 0;
        }
        fprintf(stderr, "qembed info: unknown argument '%s' (see qembed info --help)\n", ap.value);
        return 1;
    }
    qembed_model_params mp = cli_settings_model_params(&s);
    qembed_model *model = cli_settings_load_model(&s, &mp);
    if (!model) return 2;
    qembed_model_info in;
    qembed_model_get_info(model, &in);
    char b1[64], b2[64];
    printf("model:                   %s\n", in.name);
    printf("path:                    %s\n", in.resolved_path);
    printf("architecture:            %s\n", in.architecture);
    printf("synthetic:               %s\n",
           in.synthetic ? "yes (random weights: its vectors carry no meaning)" : "no");
    printf("dtype:                   %s\n", in.dtype);
    printf("hidden_size:             %d\n", in.hidden_size);
    printf("layers:                  %d\n", in.n_layers);
    printf("attention heads:         %d (kv heads %d, head_dim %d)\n", in.n_heads, in.n_kv_heads,
           in.head_dim);
    printf("intermediate_size:       %d\n", in.intermediate_size);
    printf("vocab_size:              %d\n", in.vocab_size);
    printf("max_position_embeddings: %d\n", in.max_position_embeddings);
    printf("max input tokens:        %zu (default; counts the appended <|endoftext|>)\n", in.max_tokens);
    printf("parameters:              %llu (%.3f B)\n", (unsigned long long)in.n_params,
           (double)in.n_params / 1e9);
    mib(b1, sizeof b1, in.weights_bytes);
    printf("weights:                 %s, memory-mapped\n", b1);
    mib(b1, sizeof b1, cli_proc_status_bytes("VmRSS"));
    mib(b2, sizeof b2, cli_proc_status_bytes("VmHWM"));
    printf("resident memory now:     %s (peak %s)\n", b1, b2);
    printf("placement:\n");
    const char *pl = qembed_model_placement(model);
    while (*pl) {
        const char *nl = strchr(pl, '\n');
        int len = nl ? (int)(nl - pl) : (int)strlen(pl);
        printf("  %.*s\n", len, pl);
        pl += len + (nl ? 1 : 0);
    }
    printf("settings:\n");
    fflush(stdout);
    cli_settings_print(&s, stdout);
    qembed_model_free(model);
    return fflush(stdout) == 0 ? 0 : 2;
}
