// Log-sum-exp over each row of the logits, one invocation per row:
//   lse_row[i] = log Σ_{j kept} exp(L[i, j]),  kept: j < B and (j == i or labels[j] != labels[i])
// Without labels (MASKED = false, set by the launcher) every j < B is kept: plain InfoNCE.
// Bindings (f32; logits as vec4):
//   0 logits [Bp, Bp] read (padded; Bp a multiple of 4)
//   1 labels [B]      read (class ids as f32)
//   2 stats  [4, Bp]  row 0 written (0 for padding rows)
//   3 info   u32 [B, Bp]
// Workgroup: 64 invocations, one row each, no barriers; an online max/sum per vec4 lane, merged
// at the end. Dispatch (ceil(Bp / 64), 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const NEG_INF: f32 = -3.0e38;
// Class-collision masking; the launcher sets it to false when there are no labels (then the
// labels are not read at all).
const MASKED: bool = true;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = info[0];
    let bp = info[1];
    let i = gid.x;
    if (i >= bp) {
        return;
    }
    if (i >= n) {
        stats[i] = 0.0;
        return;
    }
    let q4 = bp / 4u;
    var li = 0.0;
    if (MASKED) {
        li = labels[i];
    }
    let last = n - 1u;
    var m = vec4<f32>(NEG_INF);
    var s = vec4<f32>(0.0);
    for (var q = 0u; q < (n + 3u) / 4u; q++) {
        let j = q * 4u;
        let jj = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
        var keep = jj < vec4<u32>(n);
        if (MASKED) {
            let lab = vec4<f32>(labels[min(j, last)], labels[min(j + 1u, last)],
                                labels[min(j + 2u, last)], labels[min(j + 3u, last)]);
            keep = keep & ((jj == vec4<u32>(i)) | (lab != vec4<f32>(li)));
        }
        let v = logits[i * q4 + q];
        let mx = max(m, select(vec4<f32>(NEG_INF), v, keep));
        s = s * exp(m - mx) + select(vec4<f32>(0.0), exp(v - mx), keep);
        m = mx;
    }
    let top = max(max(m.x, m.y), max(m.z, m.w));
    stats[i] = top + log(dot(s, exp(m - vec4<f32>(top))));
}
