#version 450
// y[m][n] (=|+=) sum_k x[m][k] * W[n][k]   (y = x W^T, as torch Linear)
// x (M, K) f32, W (N, K) stored as f32 / f16 / bf16 (WTYPE 0 / 1 / 2), y f32.
// 16x16 output tile per workgroup of 64 invocations, four rows of one column
// each (a W value read from shared memory serves four products); x and W
// tiles of 16 x TK staged through shared memory; f32 accumulation in k order. TK = 64: four times fewer barriers than a
// square 16x16 step (a barrier is costly on software devices such as lavapipe).
layout(local_size_x = 16, local_size_y = 4) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { uint w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint M, N, K, ldx, ldy, xoff, yoff, accumulate;
} p;
#define TK 64u
shared float xs[16][TK + 1u];
shared float ws[16][TK + 1u];

float wload(uint i) {
#if WTYPE == 0
    return uintBitsToFloat(w[i]);
#elif WTYPE == 1
    vec2 h = unpackHalf2x16(w[i >> 1]);
    return (i & 1u) != 0u ? h.y : h.x;
#else
    uint v = w[i >> 1];
    return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
#endif
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint n0 = gl_WorkGroupID.x * 16u, m0 = gl_WorkGroupID.y * 16u;
    uint col = n0 + tx;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint i = ty; i < 16u; i += 4u) {
            for (uint c = 0u; c < TK; c += 16u) {
                uint kk = k0 + c + tx;
                xs[i][c + tx] = (m0 + i < p.M && kk < p.K) ? x[p.xoff + (m0 + i) * p.ldx + kk] : 0.0;
                ws[i][c + tx] = (n0 + i < p.N && kk < p.K) ? wload((n0 + i) * p.K + kk) : 0.0;
            }
        }
        barrier();
        for (uint j = 0u; j < TK; j++) {
            float wv = ws[tx][j];
            for (uint i = 0u; i < 4u; i++) acc[i] += xs[ty + 4u * i][j] * wv;
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint row = m0 + ty + 4u * i;
        if (row < p.M && col < p.N) {
            uint o = p.yoff + row * p.ldy + col;
            y[o] = p.accumulate != 0u ? y[o] + acc[i] : acc[i];
        }
    }
}
