#version 450
// SwiGLU: g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer U { float u[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * 64u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float v = g[i];
        g[i] = v / (1.0 + exp(-v)) * u[i];
    }
}
