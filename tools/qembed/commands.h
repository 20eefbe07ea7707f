/* The qembed program: one file per command, each using only the public API.
 * Each command gets argv after the command name (argv[0] is the command) and
 * returns the process exit code: 0 success, 1 usage error, 2 input or model
 * error. */
#ifndef QEMBED_COMMANDS_H
#define QEMBED_COMMANDS_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "qembed.h"

int cmd_embed(int argc, char **argv);    /* cmd_embed.c */
int cmd_tokenize(int argc, char **argv); /* cmd_tokenize.c */
int cmd_info(int argc, char **argv);     /* cmd_info.c */
int cmd_split(int argc, char **argv);    /* cmd_split.c */
int cmd_serve(int argc, char **argv);    /* cmd_serve.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */
int cmd_pull(int argc, char **argv);     /* cmd_pull.c (client in hub/) */
int cmd_merge(int argc, char **argv);    /* cmd_merge.c */
int cmd_quantize(int argc, char **argv); /* cmd_quantize.c */

/* A /proc/self/status field (without its colon: "VmRSS", "VmHWM") in bytes;
 * 0 when unknown (proc_status.c). */
unsigned long long cli_proc_status_bytes(const char *field);

/* ---- settings shared by every command (settings.c) ----
 * Each value remembers where it came from, for `qembed info` and the logs.
 * Precedence: flag > QEMBED_* variable > PAPR_* variable > default. */
typedef struct cli_settings {
    char model[1024];
    const char *model_src; /* --model, QEMBED_MODEL, PAPR_COREML_MODEL,
                                                          PAPR_EMBEDDING_MODEL (repo id), HF cache, default */
    qembed_compute_units units;
    const char *units_src; /* --compute-units, QEMBED_COMPUTE_UNITS,
                                                          PAPR_COREML_COMPUTE_UNITS, PAPR_ENABLE_COREML=false */
    uint64_t cpu_memory_limit;
    const char *cpu_limit_src;
    uint64_t gpu_memory_limit;
    const char *gpu_limit_src;
    uint64_t sim_accel_memory;
    const char *sim_accel_src;
    size_t max_batch_tokens;
    const char *max_batch_src;
    int n_threads;
    const char *threads_src;
    int verbose;     /* -v: log DEBUG */
    int quiet;       /* -q: log WARN and above only */
    char error[256]; /* an invalid environment value ("QEMBED_THREADS=x is not ...");
                                  cli_settings_load_model reports it and fails */
    int no_verify;
    const char *verify_src; /* --no-verify, QEMBED_NO_VERIFY=1: skip the
                                                          SHA-256 check of split segments */
} cli_settings;

/* Fills defaults, then applies environment variables. */
void cli_settings_init(cli_settings *s);

/* The shared options' table (-m/--model, --compute-units, --cpu-memory-limit,
 * --gpu-memory-limit, --sim-accel-memory, --max-batch-tokens, -t/--threads,
 * --no-verify, -v, -q), which args.c (cli_args_next) adds to every command's.
 * A key below 128 is also the short option -key; keys from 256 up are long
 * only (a command's own 256..999, the shared ones 1000 and up). A table
 * ends with {NULL, 0, 0}; a NULL name is a short-only option. */
typedef struct cli_optdef {
    const char *name; /* long name without "--" */
    int key;
    int has_value; /* 1: takes a value */
} cli_optdef;
extern const cli_optdef cli_settings_opts[];

/* Applies one shared option (its key in cli_settings_opts) with its value:
 * 0, or -1 with a usage error printed to stderr when the value is invalid. */
int cli_settings_set(cli_settings *s, int key, const char *value);

/* Help text for the shared flags, for each command's --help. */
extern const char *const cli_settings_help;

/* Model params from the settings (log callback to stderr included). */
qembed_model_params cli_settings_model_params(const cli_settings *s);

/* Loads the model the settings name, printing one clear line on failure.
 * Returns NULL on failure. */
qembed_model *cli_settings_load_model(const cli_settings *s, const qembed_model_params *p);

/* Parses "512M", "3G", "1024" (bytes; K/M/G/T suffixes are powers of 1024). */
int cli_parse_bytes(const char *s, uint64_t *out);
/* Parses a whole decimal number in [lo, hi] into *out: 0, or -1 (nothing
 * stored) for an empty string, trailing characters, overflow or a number
 * outside the range. The one parser of every count and size flag. */
int cli_parse_long(const char *s, long lo, long hi, long *out);

/* Monotonic seconds, for durations (clock.c: the CLI's one clock). */
double cli_now_s(void);

/* Prints the effective configuration, each value with its source, for
 * `qembed info` (settings.c). */
void cli_settings_print(const cli_settings *s, FILE *f);

#endif
