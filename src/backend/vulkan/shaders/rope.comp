#version 450
// NEOX (rotate-half) RoPE on every head of q (T, nh*D) and k (T, nkv*D):
// v[i], v[i+D/2] rotated by the angle of pair i at the row's position. The
// cos/sin tables (positions, D/2) come from the host (the CPU's own table),
// so both backends rotate by the same float32 angles.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Q { float q[]; };
layout(std430, binding = 1) buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer C { float cs[]; };
layout(std430, binding = 3) readonly buffer S { float sn[]; };
layout(std430, binding = 4) readonly buffer Pos { int pos[]; };
layout(push_constant) uniform P { uint T, nh, nkv, D; } p;

void main() {
    uint half_d = p.D / 2u, heads = p.nh + p.nkv;
    uint total = p.T * heads * half_d;
    uint stride = gl_NumWorkGroups.x * 64u;
    for (uint g = gl_GlobalInvocationID.x; g < total; g += stride) {
        uint i = g % half_d, hr = g / half_d, h = hr % heads, r = hr / heads;
        uint t = uint(pos[r]) * half_d + i;
        float c = cs[t], s = sn[t];
        if (h < p.nh) {
            uint b = r * p.nh * p.D + h * p.D;
            float a = q[b + i], z = q[b + i + half_d];
            q[b + i] = a * c - z * s;
            q[b + i + half_d] = z * c + a * s;
        } else {
            uint b = r * p.nkv * p.D + (h - p.nh) * p.D;
            float a = k[b + i], z = k[b + i + half_d];
            k[b + i] = a * c - z * s;
            k[b + i + half_d] = z * c + a * s;
        }
    }
}
