/* One argument parser for every qembed command: glibc's getopt_long over a
 * table, so every command accepts the same forms:
 *   --name=value   --name value   -xvalue   -x value   -qv (clustered flags)
 *   --             (everything after it is an operand, even "-text")
 * Operands (texts) may come before, between or after options and are handed
 * back in order; "-" alone is an operand (standard input). Long options must
 * be spelled in full: getopt_long's unique-prefix abbreviations are refused,
 * so adding an option later never breaks a script that used a prefix.
 * The shared settings' options (-m, -t, -v, -q, --compute-units, ...) are
 * applied to the cli_settings given and never reach the command. */
#ifndef QEMBED_ARGS_H
#define QEMBED_ARGS_H

#include <getopt.h>

#include "commands.h"

#define CLI_ARGS_MAX 48 /* options of one command, shared ones included */

/* Option tables are cli_optdef arrays (commands.h). */
typedef struct cli_args {
    const char *cmd; /* "embed": messages read "qembed embed: ..." */
    int argc;
    char **argv;
    cli_settings *s; /* NULL: no shared options */
    struct option longs[CLI_ARGS_MAX + 1];
    char shorts[2 * CLI_ARGS_MAX + 3];
    const char *value;   /* the option's value, or the operand */
    const char *spelled; /* the option's name ("--dims", or "-t" when given short), for messages */
    char spelled_buf[64];
    int rest; /* after "--" or the end of options: the next operand */
    int ended;
} cli_args;

#define CLI_ARG_END 0
#define CLI_ARG_ERROR (-1)
#define CLI_ARG_OPERAND 1 /* a->value is the operand */

/* argv[0] is the command's name and is skipped. opts: the command's table. */
void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv, const cli_optdef *opts,
                   cli_settings *s);

/* The next option's key (a->value holds its value), CLI_ARG_OPERAND,
 * CLI_ARG_END, or CLI_ARG_ERROR after printing a usage error (unknown option,
 * missing value, a value given to a flag, an invalid shared value). */
int cli_args_next(cli_args *a);

#endif
