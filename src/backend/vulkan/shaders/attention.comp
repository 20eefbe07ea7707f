#version 450
// Causal grouped-query attention over a packed batch (flash-attention style).
// A workgroup takes one query row of one head; its 64 invocations stream the
// row's keys in tiles of BK = 64 (one key each: score, then tile max and sum
// through shared memory) and keep an online softmax (running max m, sum l)
// and the output accumulator, two head dimensions per invocation. Memory is
// the tile, whatever the length. A row attends to rows [seq_start[r], r] of
// its own sequence. The output replaces q.
// (A first version kept 128-float query and accumulator arrays per
// invocation, one query row each; lavapipe computed some of its rows wrong
// from about 1,800 keys on, so this form keeps per-invocation state small.)
#define BK 64u
#define DMAX 128
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer SS { int seq_start[]; };
layout(push_constant) uniform P { uint T, nh, nkv, D; float scale; } p;
shared float qs[DMAX];
shared float ps[BK];
shared float red[BK];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint r = gl_WorkGroupID.x, h = gl_WorkGroupID.y, kvh = h / (p.nh / p.nkv);
    uint ldq = p.nh * p.D, ldkv = p.nkv * p.D;
    uint s0 = uint(seq_start[r]);
    for (uint d = t; d < p.D; d += BK) qs[d] = q[r * ldq + h * p.D + d] * p.scale;
    barrier();
    float m = -1.0e30, l = 0.0, acc0 = 0.0, acc1 = 0.0;
    for (uint kt = s0; kt <= r; kt += BK) {
        uint kr = kt + t;
        float sc = -1.0e30;
        if (kr <= r) {
            sc = 0.0;
            uint kb = kr * ldkv + kvh * p.D;
            for (uint d = 0u; d < p.D; d++) sc += qs[d] * k[kb + d];
        }
        red[t] = sc;
        barrier();
        for (uint s = BK / 2u; s > 0u; s >>= 1) {
            if (t < s) red[t] = max(red[t], red[t + s]);
            barrier();
        }
        float mn = max(m, red[0]);
        barrier();
        float e = kr <= r ? exp(sc - mn) : 0.0;
        ps[t] = e;
        red[t] = e;
        barrier();
        for (uint s = BK / 2u; s > 0u; s >>= 1) {
            if (t < s) red[t] += red[t + s];
            barrier();
        }
        float corr = exp(m - mn);
        l = l * corr + red[0];
        acc0 *= corr;
        acc1 *= corr;
        uint nk = min(BK, r + 1u - kt);
        for (uint j = 0u; j < nk; j++) {
            uint vb = (kt + j) * ldkv + kvh * p.D;
            if (t < p.D) acc0 += ps[j] * v[vb + t];
            if (t + BK < p.D) acc1 += ps[j] * v[vb + t + BK];
        }
        m = mn;
        barrier();
    }
    float inv = 1.0 / l;
    if (t < p.D) q[r * ldq + h * p.D + t] = acc0 * inv;
    if (t + BK < p.D) q[r * ldq + h * p.D + t + BK] = acc1 * inv;
}
