// LayerNorm backward for γ and β, one invocation per column, summing over the rows with the
// mean and rstd the row pass wrote (layer_norm_backward_rows.wgsl):
//   dγ_c = Σ_r dy[r, c]·x̂[r, c],   dβ_c = Σ_r dy[r, c]
// Bindings (f32):
//   0 x      [rows, d] read
//   1 dy     [rows, d] read
//   2 stats  [2, rows] read: mean, then rstd
//   3 dgamma [d]       written
//   4 dbeta  [d]       written
//   5 info   u32 [rows, d]
// Workgroup: 64 invocations over columns; dispatch (ceil(d / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let rows = info[0];
    let d = info[1];
    let c = gid.x;
    if (c >= d) {
        return;
    }
    var dg = 0.0;
    var db = 0.0;
    for (var r = 0u; r < rows; r++) {
        let g = dy[r * d + c];
        dg += g * (x[r * d + c] - stats[r]) * stats[rows + r];
        db += g;
    }
    dgamma[c] = dg;
    dbeta[c] = db;
}
