// Row softmax of padded classification logits into an unpadded output:
//   p[r, c] = exp(L[r, c] − max_r) / Σ_{c < cols} exp(L[r, c] − max_r)
// Turns s·normalise(images)·normalise(classes)ᵀ into class probabilities.
// Bindings (f32):
//   0 x    [rows_p, cols_p] read (padded logits)
//   1 p    [rows, cols]     written
//   2 info u32 [rows, cols, cols_p]
// Workgroup: 64 invocations per row; dispatch (rows, 1, 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
const NEG_INF: f32 = -3.0e38;
var<workgroup> wmax: array<f32, 64>;
var<workgroup> wsum: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rows = info[0];
    let cols = info[1];
    let cols_p = info[2];
    let r = wid.x;
    let in_range = r < rows; // no early return before a barrier: `rows` is not uniform to WGSL
    let base = r * cols_p;
    var m = NEG_INF;
    for (var c = lid; in_range && c < cols; c += WG) {
        m = max(m, x[base + c]);
    }
    wmax[lid] = m;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            wmax[lid] = max(wmax[lid], wmax[lid + stride]);
        }
        workgroupBarrier();
    }
    let row_max = wmax[0];
    var s = 0.0;
    for (var c = lid; in_range && c < cols; c += WG) {
        s += exp(x[base + c] - row_max);
    }
    wsum[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            wsum[lid] += wsum[lid + stride];
        }
        workgroupBarrier();
    }
    let total = wsum[0];
    for (var c = lid; in_range && c < cols; c += WG) {
        p[r * cols + c] = exp(x[base + c] - row_max) / total;
    }
}
