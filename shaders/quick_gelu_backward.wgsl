// QuickGELU's backward (src/model/quick_gelu.rs), element by element, with α = 1.702:
//   dx = dy·σ(αx)·(1 + αx·(1 − σ(αx)))
// Bindings (f32):
//   0 x    [n] read
//   1 dy   [n] read
//   2 dx   [n] written
//   3 info u32 [n]
// Workgroup: 256 invocations, SPAN elements each (256 apart); workgroups are numbered
// x + y·(groups in x). Dispatch (min(g, 32768), ceil(g / 32768), 1), g = ceil(n / (256·SPAN)).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const ALPHA: f32 = 1.702;
// Runs of 256 elements per workgroup (llvmpipe's cost is per workgroup).
const SPAN: u32 = 32u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let n = info[0];
    let start = (wid.x + wid.y * groups.x) * (256u * SPAN) + lid.x;
    for (var k = 0u; k < SPAN; k++) {
        let i = start + k * 256u;
        if (i >= n) {
            return;
        }
        let ax = ALPHA * x[i];
        // exp overflows to +inf for very negative x, and σ is then 0, as it should be.
        let s = 1.0 / (1.0 + exp(-ax));
        dx[i] = dy[i] * s * (1.0 + ax * (1.0 - s));
    }
}
