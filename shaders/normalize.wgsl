// Row L2 normalisation into a zero-padded layout: y[r, :] = x[r, :] / max(‖x[r, :]‖, 1e-12).
// Bindings (f32; x and y as vec4):
//   0 x     [rows, cols]     read (cols a multiple of 4: the caller pads other widths)
//   1 y     [rows_p, cols_p] written (rows ≥ rows and columns ≥ cols are zero)
//   2 inv   [offset + rows_p] written from `offset`: 1 / max(‖x[r]‖, 1e-12), 0 for padding rows
//   3 info  u32 [rows, cols, rows_p, cols_p, offset]
// Workgroup: 64 invocations, one row each, no shared memory and no barriers (on llvmpipe a
// workgroup per row with a barrier tree cost far more than the arithmetic); dispatch
// (ceil(rows_p / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let rows = info[0];
    let c4 = info[1] / 4u;
    let rows_p = info[2];
    let cp4 = info[3] / 4u;
    let offset = info[4];
    let r = gid.x;
    if (r >= rows_p) {
        return;
    }
    // Padding rows read the last real row (always in bounds) and scale it by zero.
    let src = min(r, rows - 1u) * c4;
    var sq = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        let v = x[src + c];
        sq += v * v;
    }
    var k = 0.0;
    if (r < rows) {
        k = 1.0 / max(sqrt(sq.x + sq.y + sq.z + sq.w), 1e-12);
    }
    inv[offset + r] = k;
    let dst = r * cp4;
    for (var c = 0u; c < c4; c++) {
        y[dst + c] = x[src + c] * k;
    }
    for (var c = c4; c < cp4; c++) {
        y[dst + c] = vec4<f32>(0.0);
    }
}
