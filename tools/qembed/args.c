/* The shared argument parser (args.h): getopt_long in RETURN_IN_ORDER mode
 * ("-" first in the short-option string) so operands come back in order
 * whatever POSIXLY_CORRECT says, and ':' so a missing value is told apart
 * from an unknown option; getopt's own messages are off (opterr = 0) and
 * replaced by the command's, which name the command and its --help. */
#include "args.h"

#include <stdio.h>
#include <string.h>

static int add_table(cli_args *a, size_t *n, char **sp, const cli_optdef *t) {
    for (; t && t->key; t++) {
        if (*n >= CLI_ARGS_MAX) return -1;
        if (t->name) {
            a->longs[*n] =
                (struct option){t->name, t->has_value ? required_argument : no_argument, NULL, t->key};
            (*n)++;
        }
        if (t->key > 0 && t->key < 128) {
            *(*sp)++ = (char)t->key;
            if (t->has_value) *(*sp)++ = ':';
        }
    }
    return 0;
}

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv, const cli_optdef *opts,
                   cli_settings *s) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->s = s;
    size_t n = 0;
    char *sp = a->shorts;
    *sp++ = '-';
    *sp++ = ':';
    /* both tables are the program's own constants: a too-long one is a bug */
    if (add_table(a, &n, &sp, opts) != 0 || (s && add_table(a, &n, &sp, cli_settings_opts) != 0))
        fprintf(stderr, "qembed %s: internal: more than %d options\n", cmd, CLI_ARGS_MAX);
    *sp = '\0';
    optind = 0; /* 0, not 1: glibc re-initialises its state (tests parse many times) */
    opterr = 0;
}

static int is_shared(int key) {
    for (const cli_optdef *t = cli_settings_opts; t->key; t++)
        if (t->key == key) return 1;
    return 0;
}

/* getopt reports "--flag=value" with optopt = the flag's key (a long option
 * without a value), an unknown short option with optopt = its letter (no key). */
static int takes_no_value(const cli_args *a, int key) {
    for (const struct option *o = a->longs; o->name; o++)
        if (o->val == key && o->has_arg == no_argument) return 1;
    return 0;
}

/* "--name=value" -> "--name" for messages */
static int name_len(const char *arg) {
    const char *eq = strchr(arg, '=');
    return eq ? (int)(eq - arg) : (int)strlen(arg);
}

int cli_args_next(cli_args *a) {
    for (;;) {
        if (a->ended) {
            if (a->rest < a->argc) {
                a->value = a->argv[a->rest++];
                return CLI_ARG_OPERAND;
            }
            return CLI_ARG_END;
        }
        int li = -1;
        int c = getopt_long(a->argc, a->argv, a->shorts, a->longs, &li);
        if (c == -1) { /* the end, or "--": the rest are operands */
            a->ended = 1;
            a->rest = optind;
            continue;
        }
        if (c == 1) {
            a->value = optarg;
            return CLI_ARG_OPERAND;
        }
        const char *el = optind >= 1 && optind <= a->argc ? a->argv[optind - 1] : "";
        if (c == '?' || c == ':') {
            int is_long = el && el[0] == '-' && el[1] == '-';
            if (c == ':')
                fprintf(stderr, "qembed %s: %.*s needs a value (see qembed %s --help)\n", a->cmd,
                        is_long ? name_len(el) : 2, is_long ? el : (char[]){'-', (char)optopt, 0}, a->cmd);
            else if (!optopt) /* an unknown or ambiguous long option (its element is el) */
                fprintf(stderr, "qembed %s: unknown option '%.*s' (see qembed %s --help)\n", a->cmd,
                        name_len(el), el, a->cmd);
            else if (takes_no_value(a, optopt)) /* "--flag=value" */
                fprintf(stderr, "qembed %s: %.*s takes no value (see qembed %s --help)\n", a->cmd,
                        name_len(el), el, a->cmd);
            else /* an unknown short option, maybe inside a cluster: el is not its element */
                fprintf(stderr, "qembed %s: unknown option '-%c' (see qembed %s --help)\n", a->cmd, optopt,
                        a->cmd);
            return CLI_ARG_ERROR;
        }
        a->value = optarg;
        if (li >= 0) {
            /* The element that named the option: the one before its value
             * when the value was a separate argument. */
            const char *opt = el;
            if (optarg && optarg == el && optind >= 2) opt = a->argv[optind - 2];
            size_t nl = strlen(a->longs[li].name);
            if (strncmp(opt, "--", 2) != 0 || strncmp(opt + 2, a->longs[li].name, nl) != 0 ||
                (opt[2 + nl] != '\0' && opt[2 + nl] != '=')) {
                fprintf(stderr,
                        "qembed %s: unknown option '%.*s' (did you mean --%s? options are "
                        "not abbreviated)\n",
                        a->cmd, name_len(opt), opt, a->longs[li].name);
                return CLI_ARG_ERROR;
            }
            snprintf(a->spelled_buf, sizeof a->spelled_buf, "--%s", a->longs[li].name);
        } else {
            snprintf(a->spelled_buf, sizeof a->spelled_buf, "-%c", c);
        }
        a->spelled = a->spelled_buf;
        if (a->s && is_shared(c)) {
            if (cli_settings_set(a->s, c, optarg) != 0) return CLI_ARG_ERROR;
            continue;
        }
        return c;
    }
}
