// Row-wise L2 normalisation, the first step of CLIP's contrastive loss and of classification.
//   y[r, c] = x[r, c] * inv_norm[r],  inv_norm[r] = 1 / max(‖x[r, :]‖, 1e-12)
//   (a zero row stays zero instead of becoming NaN), optionally also yt[c, r] = y[r, c].
// Bindings (all f32 unless noted, row-major, contiguous):
//   0 x        [rows, cols]  read
//   1 y        [rows, cols]  written
//   2 yt       [cols, rows]  written when info[2] == 1 (else may be a 1-element dummy)
//   3 inv_norm [rows]        written
//   4 info     u32 [rows, cols, write_transposed]
// Workgroup: 64 invocations per row; dispatch (rows, 1, 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> yt: array<f32>;
@group(0) @binding(3) var<storage, read_write> inv_norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rows = info[0];
    let cols = info[1];
    // No early return: `rows` is read from a storage buffer, so WGSL treats it as non-uniform and
    // every barrier below must be reached by all invocations.
    let r = wid.x;
    let in_range = r < rows;
    let base = r * cols;
    var sum = 0.0;
    for (var c = lid; in_range && c < cols; c += WG) {
        let v = x[base + c];
        sum += v * v;
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / max(sqrt(partial[0]), 1e-12);
    if (in_range && lid == 0u) {
        inv_norm[r] = inv;
    }
    let transposed = info[2] == 1u;
    for (var c = lid; in_range && c < cols; c += WG) {
        let v = x[base + c] * inv;
        y[base + c] = v;
        if (transposed) {
            yt[c * rows + r] = v;
        }
    }
}
