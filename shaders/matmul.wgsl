// Scaled matrix product for the contrastive core: C[m, n] = exp(scale[0]) · Σ_k A(m, k) · B(k, n).
//   A is stored [M, K] (info[3] == 0) or [K, M] (info[3] == 1); B is always stored [K, N].
//   Used three times: logits = s·In·Tnᵀ (A = In, B = Tnᵀ), dIn = s·G·Tn (A = G), dTn = s·Gᵀ·In
//   (A = G read transposed).
// Bindings (f32, contiguous):
//   0 a     A            read
//   1 b     [K, N]       read
//   2 c     [M, N]       written
//   3 scale [1]          read (log space: the multiplier is exp(scale[0]))
//   4 info  u32 [M, N, K, a_transposed]
// Workgroup: 8×8 invocations; each computes 4 rows × 4 columns of a 32×32 tile. Rows of an
// invocation are fixed by local y (so A loads are uniform across x-adjacent invocations), columns
// are n0 + lx + 8j (so B loads are contiguous across them): no shared memory and no barriers,
// which suits software rasterisers (llvmpipe) and leans on caches elsewhere.
// Dispatch (ceil(N / 32), ceil(M / 32), 1). Out-of-range rows/columns read clamped (valid)
// addresses and are never written.
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = info[0];
    let N = info[1];
    let K = info[2];
    let a_transposed = info[3] == 1u;
    let m0 = wid.y * 32u + lid.y * 4u;
    let n0 = wid.x * 32u + lid.x;
    if (M == 0u || N == 0u) {
        return;
    }
    // Clamped indices: always valid reads.
    let m_0 = min(m0, M - 1u);
    let m_1 = min(m0 + 1u, M - 1u);
    let m_2 = min(m0 + 2u, M - 1u);
    let m_3 = min(m0 + 3u, M - 1u);
    let n_0 = min(n0, N - 1u);
    let n_1 = min(n0 + 8u, N - 1u);
    let n_2 = min(n0 + 16u, N - 1u);
    let n_3 = min(n0 + 24u, N - 1u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    if (a_transposed) {
        for (var k = 0u; k < K; k++) {
            let row = k * M;
            let av = vec4<f32>(a[row + m_0], a[row + m_1], a[row + m_2], a[row + m_3]);
            let brow = k * N;
            let bv = vec4<f32>(b[brow + n_0], b[brow + n_1], b[brow + n_2], b[brow + n_3]);
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
    } else {
        let r0 = m_0 * K;
        let r1 = m_1 * K;
        let r2 = m_2 * K;
        let r3 = m_3 * K;
        for (var k = 0u; k < K; k++) {
            let brow = k * N;
            let bv = vec4<f32>(b[brow + n_0], b[brow + n_1], b[brow + n_2], b[brow + n_3]);
            acc0 += a[r0 + k] * bv;
            acc1 += a[r1 + k] * bv;
            acc2 += a[r2 + k] * bv;
            acc3 += a[r3 + k] * bv;
        }
    }
    let s = exp(scale[0]);
    let accs = array<vec4<f32>, 4>(acc0 * s, acc1 * s, acc2 * s, acc3 * s);
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if (m < M) {
            let out = m * N;
            let v = accs[i];
            if (n0 < N) { c[out + n0] = v.x; }
            if (n0 + 8u < N) { c[out + n0 + 8u] = v.y; }
            if (n0 + 16u < N) { c[out + n0 + 16u] = v.z; }
            if (n0 + 24u < N) { c[out + n0 + 24u] = v.w; }
        }
    }
}
