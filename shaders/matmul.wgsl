// Scaled matrix product for the contrastive core: C[m, n] = exp(scale[0]) · Σ_k A(m, k) · B(k, n),
// on padded operands (every dimension rounded up to a multiple of 8, padding zero).
//   A is stored [Mp, Kp] (info[3] == 0) or [Kp, Mp] (info[3] == 1); B is stored [Kp, Np];
//   C is written [Mp, Np].
//   Used three times: logits = s·In·Tnᵀ (A = In, B = Tnᵀ), dIn = s·G·Tn (A = G), dTn = s·Gᵀ·In
//   (A = G read transposed).
// Bindings (vec4 of f32 but the scale, contiguous):
//   0 a     A         read
//   1 b     [Kp, Np]  read
//   2 c     [Mp, Np]  written
//   3 scale [1]       read (f32, log space: the multiplier is exp(scale[0]))
//   4 info  u32 [Mp, Np, Kp, a_transposed]
// Workgroup: 8×8 invocations, each an 8×8 block of C (a 64×64 tile per workgroup), stepping k by
// 4: 16 vec4 loads feed 256 multiply-adds. No shared memory and no barriers: on SIMD rasterisers
// (llvmpipe) every storage load costs per lane, so loads per FMA is what matters (the
// accumulators may spill to the stack, which is cheap by comparison); GPUs serve the reuse from
// cache.
// Dispatch (ceil(Np / 64), ceil(Mp / 64), 1).
@group(0) @binding(0) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

// C rows m0 + i, columns n0..n0+3 (lo) and n0+4..n0+7 (hi) += Σ_kk A(m0 + i, k + kk) · B(k + kk, ·)
fn fma_row(acc: ptr<function, array<vec4<f32>, 16>>, i: u32, av: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, b4: vec4<f32>, b5: vec4<f32>, b6: vec4<f32>, b7: vec4<f32>) {
    (*acc)[2u * i] += av.x * b0 + av.y * b2 + av.z * b4 + av.w * b6;
    (*acc)[2u * i + 1u] += av.x * b1 + av.y * b3 + av.z * b5 + av.w * b7;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let Mp = info[0];
    let Np = info[1];
    let Kp = info[2];
    let a_transposed = info[3] == 1u;
    let m0 = wid.y * 64u + lid.y * 8u;
    let n0 = wid.x * 64u + lid.x * 8u;
    // No barriers here, so invocations past the edge may simply leave.
    if (m0 >= Mp || n0 >= Np) {
        return;
    }
    let n4 = Np / 4u;
    let nq = n0 / 4u;
    let m4 = Mp / 4u;
    let k4 = Kp / 4u;
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    for (var k = 0u; k < Kp; k += 4u) {
        // B rows k..k+3, columns n0..n0+7.
        let b0 = b[k * n4 + nq];
        let b1 = b[k * n4 + nq + 1u];
        let b2 = b[(k + 1u) * n4 + nq];
        let b3 = b[(k + 1u) * n4 + nq + 1u];
        let b4 = b[(k + 2u) * n4 + nq];
        let b5 = b[(k + 2u) * n4 + nq + 1u];
        let b6 = b[(k + 3u) * n4 + nq];
        let b7 = b[(k + 3u) * n4 + nq + 1u];
        if (a_transposed) {
            // A(m, k) = a[k, m]: load rows m0..m0+7 of columns k..k+3, then transpose 4×4 blocks.
            let mq = m0 / 4u;
            let p0 = a[k * m4 + mq];
            let p1 = a[(k + 1u) * m4 + mq];
            let p2 = a[(k + 2u) * m4 + mq];
            let p3 = a[(k + 3u) * m4 + mq];
            let q0 = a[k * m4 + mq + 1u];
            let q1 = a[(k + 1u) * m4 + mq + 1u];
            let q2 = a[(k + 2u) * m4 + mq + 1u];
            let q3 = a[(k + 3u) * m4 + mq + 1u];
            fma_row(&acc, 0u, vec4<f32>(p0.x, p1.x, p2.x, p3.x), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 1u, vec4<f32>(p0.y, p1.y, p2.y, p3.y), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 2u, vec4<f32>(p0.z, p1.z, p2.z, p3.z), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 3u, vec4<f32>(p0.w, p1.w, p2.w, p3.w), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 4u, vec4<f32>(q0.x, q1.x, q2.x, q3.x), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 5u, vec4<f32>(q0.y, q1.y, q2.y, q3.y), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 6u, vec4<f32>(q0.z, q1.z, q2.z, q3.z), b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 7u, vec4<f32>(q0.w, q1.w, q2.w, q3.w), b0, b1, b2, b3, b4, b5, b6, b7);
        } else {
            // A(m, k) = a[m, k]: one vec4 holds columns k..k+3 of a row.
            let kq = k / 4u;
            fma_row(&acc, 0u, a[m0 * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 1u, a[(m0 + 1u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 2u, a[(m0 + 2u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 3u, a[(m0 + 3u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 4u, a[(m0 + 4u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 5u, a[(m0 + 5u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 6u, a[(m0 + 6u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
            fma_row(&acc, 7u, a[(m0 + 7u) * k4 + kq], b0, b1, b2, b3, b4, b5, b6, b7);
        }
    }
    let s = exp(scale[0]);
    for (var i = 0u; i < 8u; i++) {
        let row = (m0 + i) * n4 + nq;
        c[row] = acc[2u * i] * s;
        c[row + 1u] = acc[2u * i + 1u] * s;
    }
}
