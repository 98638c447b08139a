// Backward of row-wise L2 normalisation y = x·inv, inv = 1 / max(‖x‖, 1e-12):
//   dx[r, :] = (dy[r, :] − y[r, :]·(y[r, :] · dy[r, :])) · inv[r]
//   (when the norm was clamped, y = x/1e-12 is not unit and the projection term is dropped, as
//   the derivative of x/const has none).
// Bindings (f32, contiguous):
//   0 y   [rows_p, cols_p] read (padded normalised rows)
//   1 dy  [rows_p, cols_p] read (padded)
//   2 inv [..]             read: the inverse norms start at element info[3]
//   3 dx  [rows, cols]     written (not padded)
//   4 info u32 [rows, cols, cols_p, inv_offset]
// Workgroup: 64 invocations per row; dispatch (rows, 1, 1).
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rows = info[0];
    let cols = info[1];
    let cols_p = info[2];
    let r = wid.x;
    let in_range = r < rows; // no early return before a barrier (see normalize.wgsl)
    var dot = 0.0;
    for (var c = lid; in_range && c < cols; c += WG) {
        dot += y[r * cols_p + c] * dy[r * cols_p + c];
    }
    partial[lid] = dot;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (!in_range) {
        return;
    }
    let k = inv[info[3] + r];
    // A clamped norm (inv = 1e12) means x/const: no projection term.
    var proj = partial[0];
    if (k > 9.99e11) {
        proj = 0.0;
    }
    for (var c = lid; c < cols; c += WG) {
        dx[r * cols + c] = (dy[r * cols_p + c] - y[r * cols_p + c] * proj) * k;
    }
}
