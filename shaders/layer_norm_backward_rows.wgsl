// LayerNorm backward for x, one workgroup per row, the row's mean and 1/√(var + ε) recomputed:
//   x̂ = (x − mean)·rstd,  g = dy·γ,  dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
// and mean and rstd written out for the γ and β gradients (layer_norm_backward_cols.wgsl).
// Bindings (f32):
//   0 x     [rows, d] read
//   1 gamma [d]       read
//   2 dy    [rows, d] read
//   3 stats [2, rows] written: mean, then rstd
//   4 dx    [rows, d] written
//   5 info  u32 [rows, d, bits of ε]
// Workgroup: 64 invocations per row; dispatch (min(rows, 32768), ceil(rows / 32768), 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> wsum: array<f32, 64>;
var<workgroup> wsq: array<f32, 64>;
var<workgroup> wg_sum: array<f32, 64>;
var<workgroup> wgx_sum: array<f32, 64>;

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
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = lid; in_range && c < d; c += WG) {
        let g = dy[base + c] * gamma[c];
        sg += g;
        sgx += g * (x[base + c] - mean) * rstd;
    }
    wg_sum[lid] = sg;
    wgx_sum[lid] = sgx;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            wg_sum[lid] += wg_sum[lid + stride];
            wgx_sum[lid] += wgx_sum[lid + stride];
        }
        workgroupBarrier();
    }
    let mean_g = wg_sum[0] / f32(d);
    let mean_gx = wgx_sum[0] / f32(d);
    for (var c = lid; in_range && c < d; c += WG) {
        let xhat = (x[base + c] - mean) * rstd;
        dx[base + c] = rstd * (dy[base + c] * gamma[c] - mean_g - xhat * mean_gx);
    }
    if (in_range && lid == 0u) {
        stats[r] = mean;
        stats[rows + r] = rstd;
    }
}
