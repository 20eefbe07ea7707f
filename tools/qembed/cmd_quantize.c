/* `qembed quantize`: writes a model as one GGUF file in a chosen weight type
 * (qembed_model_quantize). Public API only. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static const char *const quantize_usage =
    "usage: qembed quantize -m MODEL -o OUT.gguf --type TYPE\n"
    "\n"
    "Writes MODEL (a Hugging Face folder or repo id, a split folder, or a GGUF) as one GGUF v3\n"
    "file: qwen3 metadata, the tokenizer, and the weight matrices in TYPE (norms stay f32).\n"
    "OUT.gguf then loads anywhere a model does (-m OUT.gguf).\n"
    "\n"
    "  -o, --output FILE   the .gguf to write (replaced if it exists)\n"
    "      --type TYPE     q8_0 (8-bit blocks of 32 with an f16 scale), bf16, f16, f32, or\n"
    "                      q4_k_m, q5_k_m, q6_k, q4_0, q5_0: llama.cpp's per-tensor mixtures of\n"
    "                      its 4-6 bit block types (q4_k_m: Q4_K, with Q6_K for the embedding\n"
    "                      and for attn_v/ffn_down on some layers)\n"
    "\n";

enum { OPT_TYPE = 256 };

static const cli_optdef quantize_opts[] = {
    {"help", 'h', 0},
    {"output", 'o', 1},
    {"type", OPT_TYPE, 1},
    {NULL, 0, 0},
};

int cmd_quantize(int argc, char **argv) {
    cli_settings s;
    cli_settings_init(&s);
    const char *out = NULL, *type = NULL;
    cli_args ap;
    cli_args_init(&ap, "quantize", argc, argv, quantize_opts, &s);
    for (int k; (k = cli_args_next(&ap)) != CLI_ARG_END;) {
        const char *v = ap.value;
        switch (k) {
            case CLI_ARG_ERROR: return 1;
            case 'h':
                fputs(quantize_usage, stdout);
                fputs(cli_settings_help, stdout);
                return 0;
            case 'o': out = v; break;
            case OPT_TYPE:
                if (strcmp(v, "q8_0") && strcmp(v, "bf16") && strcmp(v, "f16") && strcmp(v, "f32") &&
                    strcmp(v, "q4_k_m") && strcmp(v, "q5_k_m") && strcmp(v, "q6_k") && strcmp(v, "q4_0") &&
                    strcmp(v, "q5_0")) {
                    fprintf(stderr,
                            "qembed quantize: --type: '%s' is not one of q8_0, q6_k, q5_k_m, q4_k_m, q5_0, "
                            "q4_0, bf16, f16, f32\n",
                            v);
                    return 1;
                }
                type = v;
                break;
            default:
                fprintf(stderr, "qembed quantize: unexpected argument '%s' (see qembed quantize --help)\n",
                        v);
                return 1;
        }
    }
    if (!out || !type) {
        fprintf(stderr,
                "qembed quantize: -o OUT.gguf and --type are required (see qembed quantize --help)\n");
        return 1;
    }
    size_t ol = strlen(out);
    if (ol < 6 || strcmp(out + ol - 5, ".gguf")) {
        fprintf(stderr, "qembed quantize: -o '%s': the output must end in .gguf\n", out);
        return 1;
    }
    if (s.error[0]) {
        fprintf(stderr, "qembed quantize: %s\n", s.error);
        return 1;
    }
    if (!s.model[0]) {
        fprintf(stderr, "qembed quantize: -m MODEL is required\n");
        return 1;
    }
    qembed_error e;
    memset(&e, 0, sizeof e);
    qembed_status st = qembed_model_quantize(s.model, out, type, &e);
    if (st != QEMBED_OK) {
        fprintf(stderr, "qembed quantize: error: %s: %s\n", qembed_status_str(st), e.message);
        return 2;
    }
    fprintf(stderr, "qembed quantize: wrote %s (%s)\n", out, type);
    return 0;
}
