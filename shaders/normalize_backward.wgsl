// Backward of row L2 normalisation y = x·k (k = 1 / max(‖x‖, 1e-12)), one invocation per row:
//   dx = k · (dy − y · (y·dy)),  or dx = k · dy where the norm was clamped (x ≈ 0).
// Bindings (f32; y, dy, dx as vec4):
//   0 y    [Bp, cols_p] read (normalised, zero-padded)
//   1 dy   [Bp, cols_p] read
//   2 inv  [offset + rows] read from `offset` (the forward's k per row)
//   3 dx   [rows, cols]   written (cols a multiple of 4: the caller slices other widths)
//   4 info u32 [rows, cols, cols_p, offset]
// Workgroup: 64 invocations, one row each, no barriers. Dispatch (ceil(rows / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> inv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let rows = info[0];
    let c4 = info[1] / 4u;
    let cp4 = info[2] / 4u;
    let offset = info[3];
    let r = gid.x;
    if (r >= rows) {
        return;
    }
    let src = r * cp4;
    var dot4 = vec4<f32>(0.0);
    for (var c = 0u; c < c4; c++) {
        dot4 += y[src + c] * dy[src + c];
    }
    let k = inv[offset + r];
    // A clamped norm (k = 1e12) means x/const: no projection term.
    var proj = dot4.x + dot4.y + dot4.z + dot4.w;
    if (k > 9.99e11) {
        proj = 0.0;
    }
    for (var c = 0u; c < c4; c++) {
        dx[r * c4 + c] = (dy[src + c] - y[src + c] * proj) * k;
    }
}
