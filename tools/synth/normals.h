/* Blocks of standard normal draws for qembed-synth (see rng.h). */
#ifndef QE_SYNTH_NORMALS_H
#define QE_SYNTH_NORMALS_H

#include <stddef.h>
#include <stdint.h>

/* out[2k], out[2k+1] = the normal pair j0 + k of the stream keyed by key,
 * for k < n_pairs. Every implementation gives the same bits. */
typedef void (*qs_normals_fn)(uint64_t key, uint64_t j0, size_t n_pairs, float *out);

/* The fastest body this CPU runs (QEMBED_SYNTH_SCALAR=1 forces the scalar
 * reference); *name says which. */
qs_normals_fn qs_pick_normals(const char **name);

#endif
