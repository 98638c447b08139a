// The symmetric InfoNCE loss from the logits' diagonal and the row/column log-sum-exps:
//   loss = Σ_i (lse_row[i] − L[i, i] + lse_col[i] − L[i, i]) / (2B)
// Bindings (f32):
//   0 logits [Bp, Bp] read (diagonal only)
//   1 stats  [4, Bp]  read (row 0: lse_row, row 1: lse_col)
//   2 loss   [1]      written
//   3 info   u32 [B, Bp]
// Workgroup: one of 64 invocations, each summing a strided part; invocation 0 adds the 64 parts
// after a single barrier (on llvmpipe every barrier suspends every SIMD group of the workgroup).
// Dispatch (1, 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let bp = info[1];
    var sum = 0.0;
    for (var i = lid; i < n; i += WG) {
        sum += stats[i] + stats[bp + i] - 2.0 * logits[i * bp + i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    if (lid == 0u) {
        var total = 0.0;
        for (var k = 0u; k < WG; k++) {
            total += partial[k];
        }
        loss[0] = total / (2.0 * f32(n));
    }
}
