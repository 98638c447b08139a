// Scaled matrix product for the contrastive core: C[m, n] = exp(scale[0]) · Σ_k A(m, k) · B(k, n),
// on padded operands (every dimension rounded up to a multiple of 32, padding zero).
//   A is stored [Mp, Kp], or [Kp, Mp] when read transposed; B is stored [Kp, Np], or [Np, Kp]
//   when read transposed; C is written [Mp, Np].
//   Used three times: logits = s·In·Tnᵀ (B = Tn read transposed), dIn = s·G·Tn, dTn = s·Gᵀ·In
//   (A = G read transposed); and for classification logits like the first.
// Bindings (vec4 of f32 but the scale, contiguous):
//   0 a     A         read
//   1 b     B         read
//   2 c     [Mp, Np]  written
//   3 scale [1]       read (f32, log space: the multiplier is exp(scale[0]))
//   4 info  u32 [Mp, Np, Kp]
// A template: src/contrastive/kernels.rs (`matmul_source`) fills in the double-braced parts
// for one register block of ROWS × 4·QUADS elements of C per invocation, unrolled into named
// variables, and for one orientation of each operand. Unrolled because SIMD rasterisers
// (llvmpipe) keep a local array in memory behind per-lane loads unless every index is a
// constant, and because they run both sides of every `if` under a mask: a run-time "is A
// transposed?" test inside the k loop made llvmpipe do both loops' loads and multiply-adds.
// The block per adapter:
//   GPUs: 8 × 8 (ROWS 8, QUADS 2; 8×8 invocations = a 64×64 tile): 16 vec4 loads per 256
//     multiply-adds; more accumulators per invocation would cost registers and occupancy.
//   CPU rasterisers: 32 × 16 (ROWS 32, QUADS 4, 8×2 invocations): 48 vec4 loads per 2048
//     multiply-adds; on products of at least 64 × 256, 64 × 32 (ROWS 64, QUADS 8, 8×1
//     invocations): 96 per 8192. There every storage load is a loop over the SIMD lanes with a
//     branch per lane and component, so loads per multiply-add decide the speed; accumulators
//     that spill to the stack are cheap by comparison. WX stays 8: llvmpipe fills its 8 lanes
//     along x, so a narrower workgroup leaves lanes idle.
// Workgroup: WX × WY invocations; the k loop steps by 4. Dispatch
//   (ceil(Np / (WX · 4 · QUADS)), ceil(Mp / (WY · ROWS)), 1).
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wx }}, {{ wy }}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let Mp = info[0];
    let Np = info[1];
    let Kp = info[2];
    // First row of this invocation's block, and its first column in vec4s.
    let m0 = wid.y * {{ tile_rows }}u + lid.y * {{ rows }}u;
    let nq = wid.x * {{ tile_quads }}u + lid.x * {{ quads }}u;
    // No barriers here, so invocations past the edge may simply leave.
    if (m0 >= Mp || nq * 4u >= Np) {
        return;
    }
    let n4 = Np / 4u;
    let m4 = Mp / 4u;
    let k4 = Kp / 4u;
    let mq = m0 / 4u;
{{ init }}
    for (var kq = 0u; kq < k4; kq++) {
        let k = kq * 4u;
{{ step }}
    }
    let s = exp(scale[0]);
{{ store }}
}
