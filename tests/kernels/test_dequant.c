/* Dequantization of ggml's block types against ggml itself, and our encoders.
 * data/kquant_fixture.bin (see data/README) holds, per type, rows of blocks
 * made by ggml's reference quantizer from known inputs plus rows of random
 * bytes (every field value), and the floats ggml's reference dequantizer
 * gives for them. Checked here:
 *  - qe_dequant_row reproduces ggml's floats bit for bit, every row;
 *  - qe_tensor_get_f32 agrees with it element by element;
 *  - our encoder (quant_encode.c) on the same inputs: its blocks dequantize
 *    to within a bound of the input, and its error is at most a stated factor
 *    of ggml's reference quantizer's error on the same row (printed).
 * Usage: test_dequant FIXTURE */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dequant.h"
#include "backend/cpu/kernels.h"
#include "check.h"
#include "embed/quant_encode.h"

static qe_dtype dtype_of(uint32_t ggml) {
    switch (ggml) {
        case 2: return QE_Q4_0;
        case 6: return QE_Q5_0;
        case 12: return QE_Q4_K;
        case 13: return QE_Q5_K;
        case 14: return QE_Q6_K;
    }
    return QE_F32;
}

static double rms_err(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / n);
}

static double rms(const float *a, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * a[i];
    return sqrt(s / n);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_dequant FIXTURE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    CHECK(f != NULL, "cannot open %s", argv[1]);
    if (!f) return 1;
    char magic[8];
    CHECK(fread(magic, 1, 8, f) == 8 && !memcmp(magic, "QEKQFIX1", 8), "bad fixture magic");
    int sections = 0;
    uint32_t hdr[4];
    while (fread(hdr, 4, 4, f) == 4) {
        const qe_dtype t = dtype_of(hdr[0]);
        const int rows = (int)hdr[1], cols = (int)hdr[2], nq = (int)hdr[3];
        CHECK(t != QE_F32 && rows > 0 && cols > 0 && nq <= rows && cols % 256 == 0, "bad section header");
        if (t == QE_F32) return 1;
        const size_t rb = qe_dtype_bytes(t, (uint64_t)cols);
        unsigned char *blk = malloc(rb * rows), *mine = malloc(rb);
        float *src = malloc(sizeof(float) * nq * cols), *ref = malloc(sizeof(float) * rows * cols);
        float *got = malloc(sizeof(float) * cols), *enc = malloc(sizeof(float) * cols);
        if (!blk || !mine || !src || !ref || !got || !enc) return 1;
        CHECK(fread(blk, rb, rows, f) == (size_t)rows &&
                  fread(src, 4, (size_t)nq * cols, f) == (size_t)nq * cols &&
                  fread(ref, 4, (size_t)rows * cols, f) == (size_t)rows * cols,
              "truncated fixture");
        int exact = 0;
        double worst_ratio = 0;
        for (int r = 0; r < rows; r++) {
            const float *want = ref + (size_t)r * cols;
            qe_dequant_row(t, blk + rb * r, got, (size_t)cols);
            int diff = memcmp(got, want, sizeof(float) * cols);
            CHECK(diff == 0, "%s row %d: dequantized floats differ from ggml's", qe_dtype_name(t), r);
            for (int i = 0; diff && i < cols; i++)
                if (memcmp(&got[i], &want[i], 4)) {
                    fprintf(stderr, "  first at %d: ours %.9g, ggml %.9g\n", i, got[i], want[i]);
                    break;
                }
            exact += diff == 0;
            for (int i = 0; i < cols; i++)
                if (memcmp(&got[i], &(float){qe_tensor_get_f32(blk + rb * r, t, (size_t)i)}, 4)) {
                    CHECK(0, "%s row %d col %d: qe_tensor_get_f32 differs from qe_dequant_row",
                          qe_dtype_name(t), r, i);
                    break;
                }
            if (r >= nq) continue;
            /* our encoder on ggml's input row */
            const float *x = src + (size_t)r * cols;
            CHECK(qe_quant_row(t, x, mine, (size_t)cols) == 0, "%s: encoder refused", qe_dtype_name(t));
            qe_dequant_row(t, mine, enc, (size_t)cols);
            double e_ours = rms_err(enc, x, cols), e_ggml = rms_err(want, x, cols), scale = rms(x, cols);
            /* at most 1.5x ggml's error, or below 1e-3 of the row's size
             * (rows ggml reproduces almost exactly: zeros, constant rows) */
            CHECK(e_ours <= 1.5 * e_ggml || e_ours <= 1e-3 * scale + 1e-30,
                  "%s row %d: our rms error %.3g vs ggml's %.3g (row rms %.3g)", qe_dtype_name(t), r, e_ours,
                  e_ggml, scale);
            if (e_ggml > 1e-3 * scale && e_ours / e_ggml > worst_ratio) worst_ratio = e_ours / e_ggml;
        }
        printf(
            "%s: %d/%d rows bit-exact with ggml's dequantizer; our encoder's rms error at most %.2fx ggml's "
            "reference quantizer's\n",
            qe_dtype_name(t), exact, rows, worst_ratio);
        sections++;
        free(blk), free(mine), free(src), free(ref), free(got), free(enc);
    }
    fclose(f);
    CHECK(sections == 5, "fixture has %d sections, expected 5", sections);
    float x[40] = {0};
    unsigned char b[256];
    CHECK(qe_quant_row(QE_Q4_K, x, b, 40) == -1, "a row that is not whole blocks must be refused");
    CHECK(qe_quant_row(QE_Q4_0, x, b, 40) == -1, "a row that is not whole blocks must be refused");
    return failures != 0;
}
