#version 450
// Causal grouped-query attention over a packed batch (flash-attention style).
// A workgroup takes BQ = 16 consecutive query rows of one head (they may span
// sequences) and streams keys in tiles of BK = 64, one key per invocation:
//   scores   invocation c: key kt+c against the 16 queries (in shared memory)
//   softmax  invocation j < 16: row j's online softmax over the tile (running
//            max m, sum l, rescale factor), probabilities back in place
//   output   invocation t: head dimensions t and t+64 of all 16 rows
// Memory is the tiles whatever the length. Row r attends to keys
// [seq_start[r], r] of its own sequence. The output replaces q.
// Per-invocation arrays are indexed only by compile-time loop counters: a
// first form that indexed 128-float private arrays at run time computed some
// rows wrong on lavapipe past ~1,800 keys (the op tests cover 2,100 keys).
#define BQ 16u
#define BK 64u
#define DMAX 128
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer SS { int seq_start[]; };
layout(push_constant) uniform P { uint T, nh, nkv, D; float scale; } p;
shared float qs[BQ][DMAX];
shared float sp[BQ][BK + 1u];
shared float mrow[BQ], lrow[BQ], crow[BQ];
shared uint srow[BQ];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.y, kvh = h / (p.nh / p.nkv);
    uint ldq = p.nh * p.D, ldkv = p.nkv * p.D;
    uint r0 = gl_WorkGroupID.x * BQ;
    uint rl = min(r0 + BQ, p.T) - 1u; // last row of the group
    for (uint i = t; i < BQ * p.D; i += 64u) {
        uint j = i / p.D, d = i % p.D;
        qs[j][d] = r0 + j <= rl ? q[(r0 + j) * ldq + h * p.D + d] * p.scale : 0.0;
    }
    if (t < BQ) {
        mrow[t] = -1.0e30;
        lrow[t] = 0.0;
        srow[t] = r0 + t <= rl ? uint(seq_start[r0 + t]) : 0xffffffffu;
    }
    float acc0[BQ], acc1[BQ];
    for (uint j = 0u; j < BQ; j++) {
        acc0[j] = 0.0;
        acc1[j] = 0.0;
    }
    barrier();
    for (uint kt = srow[0]; kt <= rl; kt += BK) {
        // scores of key kt+t against the group's rows
        uint kr = kt + t;
        float s[BQ];
        for (uint j = 0u; j < BQ; j++) s[j] = 0.0;
        if (kr <= rl) {
            uint kb = kr * ldkv + kvh * p.D;
            for (uint d = 0u; d < p.D; d++) {
                float kd = k[kb + d];
                for (uint j = 0u; j < BQ; j++) s[j] += qs[j][d] * kd;
            }
        }
        for (uint j = 0u; j < BQ; j++) sp[j][t] = s[j];
        barrier();
        // row t's online softmax over the tile
        if (t < BQ && r0 + t <= rl) {
            uint r = r0 + t, lo = srow[t];
            float mx = mrow[t];
            for (uint c = 0u; c < BK; c++) {
                uint kc = kt + c;
                if (kc >= lo && kc <= r) mx = max(mx, sp[t][c]);
            }
            float sum = 0.0;
            for (uint c = 0u; c < BK; c++) {
                uint kc = kt + c;
                float e = (kc >= lo && kc <= r) ? exp(sp[t][c] - mx) : 0.0;
                sp[t][c] = e;
                sum += e;
            }
            float corr = exp(mrow[t] - mx);
            lrow[t] = lrow[t] * corr + sum;
            mrow[t] = mx;
            crow[t] = corr;
        } else if (t < BQ) {
            for (uint c = 0u; c < BK; c++) sp[t][c] = 0.0;
            crow[t] = 1.0;
        }
        barrier();
        // the output rows, two head dimensions per invocation
        uint nk = min(BK, rl + 1u - kt);
        for (uint j = 0u; j < BQ; j++) {
            acc0[j] *= crow[j];
            acc1[j] *= crow[j];
        }
        for (uint c = 0u; c < nk; c++) {
            uint vb = (kt + c) * ldkv + kvh * p.D;
            float v0 = t < p.D ? v[vb + t] : 0.0;
            float v1 = t + 64u < p.D ? v[vb + t + 64u] : 0.0;
            for (uint j = 0u; j < BQ; j++) {
                acc0[j] += sp[j][c] * v0;
                acc1[j] += sp[j][c] * v1;
            }
        }
        barrier();
    }
    for (uint j = 0u; j < BQ; j++) {
        if (r0 + j > rl) break;
        float inv = 1.0 / lrow[j];
        if (t < p.D) q[(r0 + j) * ldq + h * p.D + t] = acc0[j] * inv;
        if (t + 64u < p.D) q[(r0 + j) * ldq + h * p.D + t + 64u] = acc1[j] * inv;
    }
}
