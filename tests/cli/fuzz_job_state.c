/* libFuzzer target: the files a resumed or merged bulk job reads back, on
 * arbitrary bytes: the state file (cli_job_parse), a part's .npy header
 * (cli_npy_read_header) and the --shard value. What is accepted must hold the
 * invariants the job relies on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_io.h"
#include "job_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    cli_job j;
    char err[256];
    if (cli_job_parse(buf, size, "fuzz.qembed-state", &j, err, sizeof err) == 1) {
        if (j.shard_n < 1 || j.shard_i < 0 || j.shard_i >= j.shard_n || j.input_offset < 0 ||
            j.output_bytes < 0 || j.report_bytes < 0 || j.input_mtime < 0)
            abort();
        (void)cli_job_shard_rows(j.texts % 100000, j.shard_i, j.shard_n);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    FILE *f = fmemopen(buf, size ? size : 1, "rb");
    if (f) {
        size_t rows;
        int dims;
        if (cli_npy_read_header(f, &rows, &dims) == 0 && dims < 1) abort();
        fclose(f);
    }
    int i, n;
    if (cli_job_parse_shard(buf, &i, &n) == 0 && (n < 1 || i < 0 || i >= n)) abort();
    free(buf);
    return 0;
}
