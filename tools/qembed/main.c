/* qembed: the command-line front end. Each command lives in its own file
 * (commands.h) and uses only the public API. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const char *const usage =
    "usage: qembed COMMAND [options]\n"
    "\n"
    "Text embeddings with Qwen3-Embedding models, in C.\n"
    "\n"
    "Commands:\n"
    "  embed      embed texts (arguments or --input FILE) as JSON, JSONL, .npy or TSV\n"
    "  tokenize   print the token ids the model sees (or --decode them)\n"
    "  info       the model's configuration, size, memory, placement and settings\n"
    "  split      cut a model into segment files for several devices\n"
    "  quantize   write a model as one GGUF file (q8_0, q4_k_m, ..., bf16, f16 or f32 weights)\n"
    "  serve      run the HTTP embedding service\n"
    "  bench      measure throughput and latency\n"
    "  merge      join the parts of a sharded bulk job (embed --shard I/N)\n"
    "  pull       download a model from the Hugging Face Hub into the shared cache\n"
    "\n"
    "Run 'qembed COMMAND --help' for a command's options. 'qembed --version' prints the version.\n"
    "Exit status: 0 success, 1 usage error, 2 input or model error.\n";

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
} command;

static const command commands[] = {
    {"embed", cmd_embed}, {"tokenize", cmd_tokenize}, {"info", cmd_info},
    {"split", cmd_split}, {"serve", cmd_serve},       {"bench", cmd_bench},
    {"merge", cmd_merge}, {"quantize", cmd_quantize}, {"pull", cmd_pull},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 1;
    }
    const char *c = argv[1];
    if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("qembed %s\n", qembed_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(c, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qembed: unknown command '%s'\n\n", c);
    fputs(usage, stderr);
    return 1;
}
