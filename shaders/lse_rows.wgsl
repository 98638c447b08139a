// Row log-sum-exps of the B×B logits: the statistics of the image→text softmax cross-entropy.
// With class-collision masking, off-diagonal pairs of the same label leave the denominator
// (labels all distinct = the plain loss):
//   lse[i] = log Σ_j [j == i or label[j] != label[i]] exp(L[i, j])
// Bindings (f32, contiguous):
//   0 logits [Bp, Bp] read
//   1 labels [B]    read (class ids as f32, exact below 2^24)
//   2 lse    [2, B] written: this kernel fills the first B (rows)
//   3 info   u32 [B, Bp] (logits rows are Bp long, Bp ≥ B)
// Workgroup: 64 invocations per row striding over columns (contiguous reads across invocations),
// online LSE per invocation, then a tree merge; dispatch (B, 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const WG: u32 = 64u;
const NEG_INF: f32 = -3.0e38;
var<workgroup> wmax: array<f32, 64>;
var<workgroup> wsum: array<f32, 64>;

// Merge two online-LSE states (max, Σ exp(x − max)).
fn merge(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2<f32> {
    let m = max(m1, m2);
    return vec2<f32>(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let row_len = info[1]; // row stride of the padded logits
    let i = wid.x;
    let in_range = i < n; // no early return before a barrier: `n` is not uniform to WGSL
    let li = labels[min(i, n - 1u)];
    var m = NEG_INF;
    var s = 0.0;
    for (var j = lid; in_range && j < n; j += WG) {
        if (j == i || labels[j] != li) {
            let st = merge(m, s, logits[i * row_len + j], 1.0);
            m = st.x;
            s = st.y;
        }
    }
    wmax[lid] = m;
    wsum[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            let st = merge(wmax[lid], wsum[lid], wmax[lid + stride], wsum[lid + stride]);
            wmax[lid] = st.x;
            wsum[lid] = st.y;
        }
        workgroupBarrier();
    }
    if (in_range && lid == 0u) {
        lse[i] = wmax[0] + log(wsum[0]);
    }
}
