/* settings.c (the CLI's effective configuration), linked in directly:
 * precedence flag > QEMBED_* > PAPR_* > default, the source each value
 * remembers, byte sizes, and invalid values reported rather than ignored.
 * Declarative: each case sets variables and flags and expects values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"

#include "check.h"

static const char *const vars[] = {"QEMBED_MODEL",
                                   "PAPR_COREML_MODEL",
                                   "PAPR_EMBEDDING_MODEL",
                                   "QEMBED_COMPUTE_UNITS",
                                   "PAPR_COREML_COMPUTE_UNITS",
                                   "PAPR_ENABLE_COREML",
                                   "QEMBED_CPU_MEMORY_LIMIT",
                                   "QEMBED_GPU_MEMORY_LIMIT",
                                   "QEMBED_SIM_ACCEL_MEMORY",
                                   "QEMBED_MAX_BATCH_TOKENS",
                                   "QEMBED_THREADS",
                                   "QEMBED_NO_VERIFY",
                                   "HF_HOME",
                                   "HF_HUB_CACHE",
                                   "XDG_CACHE_HOME"};

static char empty_home[256];

/* env: "NAME=value" strings; argv: flags, parsed by the CLI's parser (args.c)
 * with no command options of its own. Returns 1 when every flag was taken,
 * -1 on a usage error, 0 when an operand was left over. */
static int run_case(cli_settings *s, const char *const *env, const char *const *flags) {
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    /* No Hugging Face cache and no ./models unless a case makes one. */
    setenv("HOME", empty_home, 1);
    for (; env && *env; env++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", *env);
        char *eq = strchr(buf, '=');
        *eq = '\0';
        setenv(buf, eq + 1, 1);
    }
    cli_settings_init(s);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"test";
    for (; flags && *flags && argc < 31; flags++) argv[argc++] = (char *)*flags;
    argv[argc] = NULL;
    static const cli_optdef none[] = {{NULL, 0, 0}};
    cli_args a;
    cli_args_init(&a, "test", argc, argv, none, s);
    int worst = 1, k;
    while ((k = cli_args_next(&a)) != CLI_ARG_END) {
        if (k == CLI_ARG_ERROR) return -1;
        if (k == CLI_ARG_OPERAND) worst = 0;
    }
    return worst;
}

#define E(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const *)NULL)

static void test_compute_units_precedence(void) {
    cli_settings s;
    run_case(&s, NONE, NONE);
    CHECK(s.units == QEMBED_UNITS_ALL && !strcmp(s.units_src, "default"), "default ALL");

    run_case(&s, E("PAPR_COREML_COMPUTE_UNITS=cpu_and_gpu"), NONE);
    CHECK(s.units == QEMBED_UNITS_CPU_AND_GPU && !strcmp(s.units_src, "PAPR_COREML_COMPUTE_UNITS"),
          "PAPR units: %d %s", s.units, s.units_src);

    run_case(&s, E("PAPR_COREML_COMPUTE_UNITS=CPU_AND_GPU", "QEMBED_COMPUTE_UNITS=CPU_AND_NE"), NONE);
    CHECK(s.units == QEMBED_UNITS_CPU_AND_NE && !strcmp(s.units_src, "QEMBED_COMPUTE_UNITS"),
          "QEMBED beats PAPR: %s", s.units_src);

    run_case(&s, E("QEMBED_COMPUTE_UNITS=CPU_AND_NE"), E("--compute-units", "cpu_only"));
    CHECK(s.units == QEMBED_UNITS_CPU_ONLY && !strcmp(s.units_src, "--compute-units"), "flag beats env: %s",
          s.units_src);

    run_case(&s, E("QEMBED_COMPUTE_UNITS=CPU_AND_NE"), E("--compute-units=ALL"));
    CHECK(s.units == QEMBED_UNITS_ALL && !strcmp(s.units_src, "--compute-units"), "--flag=value");

    /* PAPR_ENABLE_COREML=false: accelerators off, over PAPR_COREML_COMPUTE_UNITS. */
    static const char *const offs[] = {"false", "0", "no", "FALSE", "off"};
    for (size_t i = 0; i < 5; i++) {
        char v[64];
        snprintf(v, sizeof v, "PAPR_ENABLE_COREML=%s", offs[i]);
        run_case(&s, E(v, "PAPR_COREML_COMPUTE_UNITS=ALL"), NONE);
        CHECK(s.units == QEMBED_UNITS_CPU_ONLY && strstr(s.units_src, "PAPR_ENABLE_COREML"), "%s: %d %s", v,
              s.units, s.units_src);
    }
    run_case(&s, E("PAPR_ENABLE_COREML=true"), NONE);
    CHECK(s.units == QEMBED_UNITS_ALL, "PAPR_ENABLE_COREML=true keeps ALL");
    run_case(&s, E("PAPR_ENABLE_COREML=false", "QEMBED_COMPUTE_UNITS=ALL"), NONE);
    CHECK(s.units == QEMBED_UNITS_ALL && !strcmp(s.units_src, "QEMBED_COMPUTE_UNITS"),
          "QEMBED beats PAPR_ENABLE_COREML");
    run_case(&s, E("PAPR_ENABLE_COREML=false"), E("--compute-units", "CPU_AND_GPU"));
    CHECK(s.units == QEMBED_UNITS_CPU_AND_GPU, "flag beats PAPR_ENABLE_COREML");

    /* Invalid values: an error, listing the valid ones; never silently ALL. */
    run_case(&s, E("QEMBED_COMPUTE_UNITS=GPU"), NONE);
    CHECK(s.error[0] && strstr(s.error, "QEMBED_COMPUTE_UNITS=GPU") && strstr(s.error, "CPU_ONLY"),
          "env error: '%s'", s.error);
    run_case(&s, E("PAPR_COREML_COMPUTE_UNITS=cpuAndGPU"), NONE);
    CHECK(s.error[0] && strstr(s.error, "PAPR_COREML_COMPUTE_UNITS"), "PAPR error: '%s'", s.error);
    CHECK(run_case(&s, NONE, E("--compute-units", "NE")) == -1, "invalid flag is a usage error");
    CHECK(run_case(&s, NONE, E("--compute-units")) == -1, "missing value is a usage error");
    run_case(&s, E("QEMBED_COMPUTE_UNITS=bogus"), NONE);
    CHECK(cli_settings_load_model(&s, NULL) == NULL, "an invalid variable stops the load");
}

static void test_model_precedence(void) {
    cli_settings s;
    run_case(&s, E("PAPR_EMBEDDING_MODEL=Qwen/Qwen3-Embedding-4B"), NONE);
    CHECK(!strcmp(s.model, "Qwen/Qwen3-Embedding-4B") && strstr(s.model_src, "PAPR_EMBEDDING_MODEL"),
          "repo id: %s (%s)", s.model, s.model_src);
    run_case(&s, E("PAPR_EMBEDDING_MODEL=Qwen/Qwen3-Embedding-4B", "PAPR_COREML_MODEL=/m/split"), NONE);
    CHECK(!strcmp(s.model, "/m/split") && !strcmp(s.model_src, "PAPR_COREML_MODEL"),
          "PAPR_COREML_MODEL beats PAPR_EMBEDDING_MODEL: %s", s.model_src);
    run_case(&s, E("PAPR_COREML_MODEL=/m/split", "QEMBED_MODEL=/m/q"), NONE);
    CHECK(!strcmp(s.model, "/m/q") && !strcmp(s.model_src, "QEMBED_MODEL"), "QEMBED_MODEL wins");
    run_case(&s, E("QEMBED_MODEL=/m/q"), E("-m", "/m/flag"));
    CHECK(!strcmp(s.model, "/m/flag") && !strcmp(s.model_src, "--model"), "-m wins");
    run_case(&s, E("QEMBED_MODEL=/m/q"), E("--model=/m/flag2"));
    CHECK(!strcmp(s.model, "/m/flag2"), "--model=");

    /* Default: the real model when the HF cache has it. */
    char hf[300], p[600];
    snprintf(hf, sizeof hf, "%s/hf", empty_home);
    snprintf(p, sizeof p, "%s/hub/models--Qwen--Qwen3-Embedding-0.6B/snapshots", hf);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    CHECK(system(cmd) == 0, "mkdir");
    char hfvar[400];
    snprintf(hfvar, sizeof hfvar, "HF_HOME=%s", hf);
    run_case(&s, E(hfvar), NONE);
    CHECK(!strcmp(s.model, "Qwen/Qwen3-Embedding-0.6B") && strstr(s.model_src, "Hugging Face cache"),
          "HF cache default: '%s' (%s)", s.model, s.model_src);
    run_case(&s, NONE, NONE);
    CHECK(access("./models/synth-0.6b", F_OK) == 0 || (!s.model[0] && !strcmp(s.model_src, "none")),
          "no default: '%s' (%s)", s.model, s.model_src);
    CHECK(s.model[0] || cli_settings_load_model(&s, NULL) == NULL, "no model: load fails cleanly");
}

static void test_sizes_and_numbers(void) {
    static const struct {
        const char *s;
        int ok;
        uint64_t v;
    } cases[] = {
        {"1024", 1, 1024},
        {"0", 1, 0},
        {"1K", 1, 1024},
        {"512M", 1, 512ull << 20},
        {"3G", 1, 3ull << 30},
        {"3g", 1, 3ull << 30},
        {"3GB", 1, 3ull << 30},
        {"3GiB", 1, 3ull << 30},
        {"1T", 1, 1ull << 40},
        {"1.5G", 1, 3ull << 29},
        {"", 0, 0},
        {"G", 0, 0},
        {"-1G", 0, 0},
        {"3X", 0, 0},
        {"3 G", 0, 0},
        {"1.5", 0, 0},
        {"99999999999T", 0, 0},
        {"18446744073709551616", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 12345;
        int r = cli_parse_bytes(cases[i].s, &v);
        CHECK((r == 0) == cases[i].ok, "parse_bytes('%s') = %d", cases[i].s, r);
        if (cases[i].ok)
            CHECK(v == cases[i].v, "parse_bytes('%s') = %llu", cases[i].s, (unsigned long long)v);
    }

    cli_settings s;
    run_case(&s,
             E("QEMBED_SIM_ACCEL_MEMORY=3G", "QEMBED_CPU_MEMORY_LIMIT=8G", "QEMBED_GPU_MEMORY_LIMIT=512M",
               "QEMBED_MAX_BATCH_TOKENS=2048", "QEMBED_THREADS=3"),
             NONE);
    CHECK(s.sim_accel_memory == 3ull << 30 && !strcmp(s.sim_accel_src, "QEMBED_SIM_ACCEL_MEMORY"), "sim env");
    CHECK(s.cpu_memory_limit == 8ull << 30 && !strcmp(s.cpu_limit_src, "QEMBED_CPU_MEMORY_LIMIT"), "cpu env");
    CHECK(s.gpu_memory_limit == 512ull << 20 && !strcmp(s.gpu_limit_src, "QEMBED_GPU_MEMORY_LIMIT"),
          "gpu env");
    CHECK(s.max_batch_tokens == 2048 && !strcmp(s.max_batch_src, "QEMBED_MAX_BATCH_TOKENS"), "batch env");
    CHECK(s.n_threads == 3 && !strcmp(s.threads_src, "QEMBED_THREADS"), "threads env");
    CHECK(!s.error[0], "no error: %s", s.error);

    run_case(&s, E("QEMBED_SIM_ACCEL_MEMORY=3G", "QEMBED_THREADS=3", "QEMBED_MAX_BATCH_TOKENS=2048"),
             E("--sim-accel-memory", "1G", "-t", "1", "--max-batch-tokens=512", "--cpu-memory-limit", "4G",
               "--gpu-memory-limit=2G", "-q"));
    CHECK(s.sim_accel_memory == 1ull << 30 && !strcmp(s.sim_accel_src, "--sim-accel-memory"), "sim flag");
    CHECK(s.n_threads == 1 && !strcmp(s.threads_src, "--threads"), "threads flag");
    CHECK(s.max_batch_tokens == 512 && !strcmp(s.max_batch_src, "--max-batch-tokens"), "batch flag");
    CHECK(s.cpu_memory_limit == 4ull << 30 && s.gpu_memory_limit == 2ull << 30, "limits flags");
    CHECK(s.quiet == 1, "-q");
    qembed_model_params mp = cli_settings_model_params(&s);
    CHECK(mp.sim_accel_memory == 1ull << 30 && mp.n_threads == 1 && mp.max_batch_tokens == 512 &&
              mp.cpu_memory_limit == 4ull << 30 && mp.gpu_memory_limit == 2ull << 30 &&
              mp.log_level == QEMBED_LOG_WARN && mp.log_fn,
          "model params follow the settings");

    static const char *const bad_env[] = {"QEMBED_SIM_ACCEL_MEMORY=3X", "QEMBED_THREADS=-1",
                                          "QEMBED_THREADS=two", "QEMBED_MAX_BATCH_TOKENS=0",
                                          "QEMBED_CPU_MEMORY_LIMIT=lots"};
    for (size_t i = 0; i < 5; i++) {
        run_case(&s, E(bad_env[i]), NONE);
        char name[64];
        snprintf(name, sizeof name, "%s", bad_env[i]);
        *strchr(name, '=') = '\0';
        CHECK(s.error[0] && strstr(s.error, name), "%s: error '%s'", bad_env[i], s.error);
    }
    static const char *const bad_flags[][2] = {{"--sim-accel-memory", "3X"},
                                               {"--threads", "-2"},
                                               {"--max-batch-tokens", "0"},
                                               {"-t", "x"},
                                               {"--cpu-memory-limit", ""}};
    for (size_t i = 0; i < 5; i++)
        CHECK(run_case(&s, NONE, E(bad_flags[i][0], bad_flags[i][1])) == -1, "%s %s accepted",
              bad_flags[i][0], bad_flags[i][1]);
    /* One parser for every command: an option neither the command nor the
     * shared table knows is a usage error (it used to be left to the command,
     * which then refused it). */
    CHECK(run_case(&s, NONE, E("--unknown")) == -1, "unknown flags are a usage error");

    run_case(&s, NONE, NONE);
    CHECK(!s.no_verify && !cli_settings_model_params(&s).no_verify, "verify by default");
    run_case(&s, E("QEMBED_NO_VERIFY=1"), NONE);
    CHECK(s.no_verify && !strcmp(s.verify_src, "QEMBED_NO_VERIFY") && cli_settings_model_params(&s).no_verify,
          "QEMBED_NO_VERIFY=1");
    run_case(&s, E("QEMBED_NO_VERIFY=0"), NONE);
    CHECK(!s.no_verify, "QEMBED_NO_VERIFY=0");
    run_case(&s, NONE, E("--no-verify"));
    CHECK(s.no_verify && !strcmp(s.verify_src, "--no-verify"), "--no-verify");
}

/* The forms every command accepts (args.c over getopt_long). */
static void test_forms(void) {
    cli_settings s;
    CHECK(run_case(&s, NONE, E("-t2", "-mmodels/x", "-qv")) == 1 && s.n_threads == 2 &&
              !strcmp(s.model, "models/x") && s.quiet && s.verbose,
          "-t2 -mDIR -qv: %d %s", s.n_threads, s.model);
    CHECK(run_case(&s, NONE, E("--threads=3", "--model", "m")) == 1 && s.n_threads == 3 &&
              !strcmp(s.model, "m") && !strcmp(s.threads_src, "--threads"),
          "--threads=3 --model m");
    CHECK(run_case(&s, NONE, E("-t", "4", "--", "-t", "5")) == 0 && s.n_threads == 4,
          "after --, -t 5 is an operand: %d", s.n_threads);
    CHECK(run_case(&s, NONE, E("text", "-t", "6", "-")) == 0 && s.n_threads == 6,
          "operands before and after options; '-' is an operand");
    CHECK(run_case(&s, NONE, E("--thread", "2")) == -1, "abbreviations are refused");
    CHECK(run_case(&s, NONE, E("--no-verify=1")) == -1, "a flag given a value is refused");
    CHECK(run_case(&s, NONE, E("-t")) == -1, "-t without a value");
    CHECK(run_case(&s, NONE, E("--threads=")) == -1, "--threads= (empty value)");
    CHECK(run_case(&s, NONE, E("-x")) == -1, "unknown short option");
    CHECK(run_case(&s, NONE, E("-qx")) == -1, "unknown short option in a cluster");
    CHECK(run_case(&s, NONE, E("--no-verify", "-xq")) == -1, "unknown short option first in a cluster");
}

static void test_print(void) {
    cli_settings s;
    run_case(&s, E("PAPR_COREML_COMPUTE_UNITS=CPU_AND_NE", "QEMBED_SIM_ACCEL_MEMORY=3G"),
             E("-m", "/some/model"));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_settings_print(&s, f);
    fclose(f);
    CHECK(strstr(buf, "/some/model") && strstr(buf, "(--model)"), "model line:\n%s", buf);
    CHECK(strstr(buf, "CPU_AND_NE") && strstr(buf, "(PAPR_COREML_COMPUTE_UNITS)"), "units line:\n%s", buf);
    CHECK(strstr(buf, "3G") && strstr(buf, "(QEMBED_SIM_ACCEL_MEMORY)"), "sim line:\n%s", buf);
    CHECK(strstr(buf, "16384") && strstr(buf, "(default)"), "batch default:\n%s", buf);
    free(buf);
}

int main(void) {
    snprintf(empty_home, sizeof empty_home, "/tmp/qembed-settings-test-%d", (int)getpid());
    mkdir(empty_home, 0755);
    test_compute_units_precedence();
    test_model_precedence();
    test_sizes_and_numbers();
    test_forms();
    test_print();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", empty_home);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", empty_home);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("settings: all checks passed\n");
    return 0;
}
