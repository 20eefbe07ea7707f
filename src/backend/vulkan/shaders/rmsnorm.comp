#version 450
// RMSNorm of rows of d values: y = w * (x / sqrt(mean(x^2) + eps)), as Hugging
// Face Qwen3RMSNorm. One workgroup per row (grid-stride over rows); x and y
// may be the same buffer (each row is read whole before it is written).
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer Wt { float w[]; };
layout(push_constant) uniform P {
    uint rows, d, ldx, ldy, xoff, yoff, woff;
    float eps;
} p;
shared float red[64];

void main() {
    uint t = gl_LocalInvocationID.x;
    for (uint r = gl_WorkGroupID.x; r < p.rows; r += gl_NumWorkGroups.x) {
        uint xb = p.xoff + r * p.ldx, yb = p.yoff + r * p.ldy;
        float s = 0.0;
        for (uint i = t; i < p.d; i += 64u) s += x[xb + i] * x[xb + i];
        red[t] = s;
        barrier();
        for (uint h = 32u; h > 0u; h >>= 1) {
            if (t < h) red[t] += red[t + h];
            barrier();
        }
        float scale = 1.0 / sqrt(red[0] / float(p.d) + p.eps);
        barrier();
        for (uint i = t; i < p.d; i += 64u) y[yb + i] = w[p.woff + i] * (x[xb + i] * scale);
        barrier();
    }
}
