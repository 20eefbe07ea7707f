/* `qembed bench`: not built yet (issue 6, phase 3). Until it is, the command
 * says so and fails rather than printing figures it did not measure. */
#include <stdio.h>

#include "commands.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "bench: not built yet\n");
    return 1;
}
