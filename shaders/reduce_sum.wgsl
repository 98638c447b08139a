// Sum of a vector: out[0] = Σ_i x[i]. Finishes d loss / d logit_scale from per-row partials.
// Bindings (f32):
//   0 x    [n] read
//   1 out  [1] written
//   2 info u32 [n]
// Workgroup: one of 64 invocations, each summing a strided part; invocation 0 adds the 64 parts
// after a single barrier. Dispatch (1, 1, 1).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    var sum = 0.0;
    for (var i = lid; i < n; i += WG) {
        sum += x[i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    if (lid == 0u) {
        var total = 0.0;
        for (var k = 0u; k < WG; k++) {
            total += partial[k];
        }
        out[0] = total;
    }
}
