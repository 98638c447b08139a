// The symmetric InfoNCE loss from the logits' diagonal and the row/column log-sum-exps:
//   loss = Σ_i (lse_row[i] − L[i, i] + lse_col[i] − L[i, i]) / (2B)
// Bindings (f32):
//   0 logits [Bp, Bp] read (diagonal only)
//   1 lse    [2, B] read
//   2 loss   [1]    written
//   3 info   u32 [B, Bp] (logits rows are Bp long, Bp ≥ B)
// Workgroup: one of 64 invocations; dispatch (1, 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let row_len = info[1]; // row stride of the padded logits
    var sum = 0.0;
    for (var i = lid; i < n; i += WG) {
        sum += lse[i] + lse[n + i] - 2.0 * logits[i * row_len + i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        loss[0] = partial[0] / (2.0 * f32(n));
    }
}
