// LayerNorm over the last dimension, one workgroup per row:
//   y = (x − mean) / √(var + ε) · γ + β   (var of the centred values: two passes over the row)
// Bindings (f32):
//   0 x     [rows, d] read
//   1 gamma [d]       read
//   2 beta  [d]       read
//   3 y     [rows, d] written
//   4 info  u32 [rows, d, bits of ε]
// Workgroup: 64 invocations per row; dispatch (min(rows, 32768), ceil(rows / 32768), 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> wsum: array<f32, 64>;
var<workgroup> wsq: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let rows = info[0];
    let d = info[1];
    let eps = bitcast<f32>(info[2]);
    let r = wid.y * 32768u + wid.x;
    let in_range = r < rows; // no early return before a barrier
    let base = r * d;
    var s = 0.0;
    for (var c = lid; in_range && c < d; c += WG) {
        s += x[base + c];
    }
    wsum[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            wsum[lid] += wsum[lid + stride];
        }
        workgroupBarrier();
    }
    let mean = wsum[0] / f32(d);
    var q = 0.0;
    for (var c = lid; in_range && c < d; c += WG) {
        let t = x[base + c] - mean;
        q += t * t;
    }
    wsq[lid] = q;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            wsq[lid] += wsq[lid + stride];
        }
        workgroupBarrier();
    }
    let rstd = inverseSqrt(wsq[0] / f32(d) + eps);
    for (var c = lid; in_range && c < d; c += WG) {
        y[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
    }
}
