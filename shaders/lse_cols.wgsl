// Column log-sum-exps of the B×B logits: the statistics of the text→image softmax cross-entropy.
//   lse[B + j] = log Σ_i [i == j or label[i] != label[j]] exp(L[i, j])
// Bindings (f32, contiguous):
//   0 logits [Bp, Bp] read
//   1 labels [B]    read
//   2 lse    [2, B] written: this kernel fills the second B (columns)
//   3 info   u32 [B, Bp] (logits rows are Bp long, Bp ≥ B)
// Workgroup: 64 invocations, one per column, each walking down the rows with an online LSE
// (contiguous reads across invocations, no barriers); dispatch (ceil(B / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const NEG_INF: f32 = -3.0e38;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = info[0];
    let row_len = info[1]; // row stride of the padded logits
    let j = gid.x;
    if (j >= n) {
        return;
    }
    let lj = labels[j];
    var m = NEG_INF;
    var s = 0.0;
    for (var i = 0u; i < n; i++) {
        if (i == j || labels[i] != lj) {
            let v = logits[i * row_len + j];
            let mx = max(m, v);
            s = s * exp(m - mx) + exp(v - mx);
            m = mx;
        }
    }
    lse[n + j] = m + log(s);
}
