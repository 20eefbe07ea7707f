#version 450
// Causal grouped-query attention over a packed batch (flash-attention style).
// A workgroup takes BQ consecutive query rows of one head, one row per
// invocation; keys and values stream through shared memory in tiles of BK
// rows, and each invocation keeps an online softmax (running max m, sum l,
// accumulator acc), so memory is the tiles whatever the length. A row attends
// to rows [seq_start[r], r] of its own sequence. The output replaces q.
#define BQ 32u
#define BK 16u
#define DMAX 128
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer SS { int seq_start[]; };
layout(push_constant) uniform P { uint T, nh, nkv, D; float scale; } p;
shared float ks[BK][DMAX];
shared float vs[BK][DMAX];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.y, kvh = h / (p.nh / p.nkv);
    uint r0 = gl_WorkGroupID.x * BQ;
    uint r = r0 + t;
    bool valid = r < p.T;
    uint rl = min(r0 + BQ, p.T) - 1u;       // last row of the group
    uint kbeg = uint(seq_start[r0]);        // first key any row of the group may see
    uint s0 = valid ? uint(seq_start[r]) : 0u;
    uint ldq = p.nh * p.D, ldkv = p.nkv * p.D;
    float qv[DMAX];
    float acc[DMAX];
    for (uint d = 0u; d < p.D; d++) {
        qv[d] = valid ? q[r * ldq + h * p.D + d] * p.scale : 0.0;
        acc[d] = 0.0;
    }
    float m = -1.0e30, l = 0.0;
    for (uint kt = kbeg; kt <= rl; kt += BK) {
        for (uint i = t; i < BK * p.D; i += 32u) {
            uint j = i / p.D, d = i % p.D, kr = kt + j;
            bool in_range = kr <= rl;
            ks[j][d] = in_range ? k[kr * ldkv + kvh * p.D + d] : 0.0;
            vs[j][d] = in_range ? v[kr * ldkv + kvh * p.D + d] : 0.0;
        }
        barrier();
        if (valid) {
            for (uint j = 0u; j < BK; j++) {
                uint kr = kt + j;
                if (kr < s0 || kr > r) continue;
                float sc = 0.0;
                for (uint d = 0u; d < p.D; d++) sc += qv[d] * ks[j][d];
                float mn = max(m, sc);
                float corr = exp(m - mn), e = exp(sc - mn);
                l = l * corr + e;
                for (uint d = 0u; d < p.D; d++) acc[d] = acc[d] * corr + e * vs[j][d];
                m = mn;
            }
        }
        barrier();
    }
    if (valid) {
        float inv = 1.0 / l;
        for (uint d = 0u; d < p.D; d++) q[r * ldq + h * p.D + d] = acc[d] * inv;
    }
}
