// Row-wise L2 normalisation into padded buffers, the first step of CLIP's contrastive loss and of
// classification:
//   y[r, c] = x[r, c] · inv_norm[r],  inv_norm[r] = 1 / max(‖x[r, :]‖, 1e-12)
//   (a zero row stays zero instead of becoming NaN); optionally also yt[c, r] = y[r, c].
//   Padding rows (rows ≤ r < rows_p) and columns (cols ≤ c < cols_p) are written as zeros, so the
//   vec4 matmul can run over whole padded blocks.
// Bindings (f32, contiguous):
//   0 x        [rows, cols]      read
//   1 y        [rows_p, cols_p]  written
//   2 yt       [cols_p, rows_p]  written when info[4] == 1 (else may be a small dummy)
//   3 inv_norm [rows_p]          written (0 for padding rows)
//   4 info     u32 [rows, cols, rows_p, cols_p, write_transposed]
// Workgroup: 64 invocations per row; dispatch (rows_p, 1, 1).
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
    let rows_p = info[2];
    let cols_p = info[3];
    let transposed = info[4] == 1u;
    // No early return: `rows` is read from a storage buffer, so WGSL treats it as non-uniform and
    // every barrier below must be reached by all invocations.
    let r = wid.x;
    let real = r < rows;
    var sum = 0.0;
    for (var c = lid; real && c < cols; c += WG) {
        let v = x[r * cols + c];
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
    if (r >= rows_p) {
        return;
    }
    var inv = 0.0;
    if (real) {
        inv = 1.0 / max(sqrt(partial[0]), 1e-12);
    }
    if (lid == 0u) {
        inv_norm[r] = inv;
    }
    for (var c = lid; c < cols_p; c += WG) {
        var v = 0.0;
        if (real && c < cols) {
            v = x[r * cols + c] * inv;
        }
        y[r * cols_p + c] = v;
        if (transposed) {
            yt[c * rows_p + r] = v;
        }
    }
}
