// Backward of the symmetric InfoNCE loss through the softmaxes, in place over the logits:
//   G[i, j] = g · (softmax_row[i, j] + softmax_col[i, j] − 2·[i == j]) / (2B)
//   with softmax_row[i, j] = exp(L[i, j] − lse_row[i]), softmax_col[i, j] = exp(L[i, j] − lse_col[j]),
//   masked pairs (same label, off the diagonal) getting 0; g = dloss (upstream gradient).
//   Also the per-row partial sums of G ∘ L, whose total is d loss / d logit_scale (L = s·S, s = e^t).
// Bindings (f32):
//   0 logits  [Bp, Bp] read, then overwritten with G (padding columns B ≤ j < Bp set to 0)
//   1 labels  [B]    read
//   2 lse     [2, B] read
//   3 grad    [1]    read: the upstream gradient of the loss
//   4 partial [B]    written: Σ_j G[i, j]·L[i, j]
//   5 info    u32 [B, Bp]
// Workgroup: 64 invocations per row (contiguous across invocations); dispatch (B, 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let row_len = info[1];
    let i = wid.x;
    let in_range = i < n; // no early return before a barrier (see normalize.wgsl)
    let row = min(i, n - 1u);
    let scale = grad[0] / (2.0 * f32(n));
    let li = labels[row];
    let lse_row = lse[row];
    var acc = 0.0;
    for (var j = lid; in_range && j < row_len; j += WG) {
        let at = i * row_len + j;
        let l = logits[at];
        var g = 0.0;
        if (j >= n) {
            g = 0.0;
        } else if (j == i) {
            g = (exp(l - lse_row) + exp(l - lse[n + j]) - 2.0) * scale;
        } else if (labels[j] != li) {
            g = (exp(l - lse_row) + exp(l - lse[n + j])) * scale;
        }
        acc += g * l;
        logits[at] = g;
    }
    sums[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            sums[lid] += sums[lid + stride];
        }
        workgroupBarrier();
    }
    if (in_range && lid == 0u) {
        partial[i] = sums[0];
    }
}
