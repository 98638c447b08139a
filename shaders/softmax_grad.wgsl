// Gradient of the symmetric InfoNCE loss w.r.t. the logits, in place, one invocation per row:
//   G[i, j] = g/(2B) · (exp(L[i, j] − lse_row[i]) + exp(L[i, j] − lse_col[j]) − 2·[i == j])
// for kept pairs (j < B and (j == i or labels[j] != labels[i])), 0 elsewhere, padding rows and
// columns included; and per row Σ_j G[i, j]·L[i, j] (d loss / d logit_scale, as L = s·cos).
// Bindings (f32; logits as vec4):
//   0 logits  [Bp, Bp] read, then overwritten with G
//   1 labels  [B]      read
//   2 stats   [4, Bp]  read (row 0: lse_row, row 1: lse_col)
//   3 grad    [1]      read (upstream gradient g of the loss)
//   4 partial [Bp]     written (0 for padding rows)
//   5 info    u32 [B, Bp]
// Workgroup: 64 invocations, one row each, no barriers. Dispatch (ceil(Bp / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

// Class-collision masking; the launcher sets it to false when there are no labels.
const MASKED: bool = true;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = info[0];
    let bp = info[1];
    let i = gid.x;
    if (i >= bp) {
        return;
    }
    let q4 = bp / 4u;
    let row = i * q4;
    if (i >= n) {
        for (var q = 0u; q < q4; q++) {
            logits[row + q] = vec4<f32>(0.0);
        }
        partial[i] = 0.0;
        return;
    }
    let scale = grad[0] / (2.0 * f32(n));
    var li = 0.0;
    if (MASKED) {
        li = labels[i];
    }
    let lse_row = stats[i];
    let last = n - 1u;
    var acc = vec4<f32>(0.0);
    for (var q = 0u; q < q4; q++) {
        let j = q * 4u;
        let jj = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
        let lse_col = vec4<f32>(stats[bp + j], stats[bp + j + 1u], stats[bp + j + 2u],
                                stats[bp + j + 3u]);
        let diagonal = jj == vec4<u32>(i);
        var keep = jj < vec4<u32>(n);
        if (MASKED) {
            let lab = vec4<f32>(labels[min(j, last)], labels[min(j + 1u, last)],
                                labels[min(j + 2u, last)], labels[min(j + 3u, last)]);
            keep = keep & (diagonal | (lab != vec4<f32>(li)));
        }
        let l = logits[row + q];
        let two_on_diagonal = select(vec4<f32>(0.0), vec4<f32>(2.0), diagonal);
        let g = (exp(l - lse_row) + exp(l - lse_col) - two_on_diagonal) * scale;
        let kept = select(vec4<f32>(0.0), g, keep);
        acc += kept * l;
        logits[row + q] = kept;
    }
    partial[i] = acc.x + acc.y + acc.z + acc.w;
}
