// Log-sum-exp over each column of the logits, one invocation per four columns:
//   lse_col[j] = log Σ_{i kept} exp(L[i, j]),  kept: i < B and (i == j or labels[i] != labels[j])
// Bindings (f32; logits as vec4):
//   0 logits [Bp, Bp] read (padded; Bp a multiple of 4)
//   1 labels [B]      read (class ids as f32)
//   2 stats  [4, Bp]  row 1 written (0 for padding columns)
//   3 info   u32 [B, Bp]
// Workgroup: 64 invocations, no barriers; each walks down its four columns with an online
// max/sum. Dispatch (ceil(Bp / 256), 1, 1).
@group(0) @binding(0) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const NEG_INF: f32 = -3.0e38;
// Class-collision masking; the launcher sets it to false when there are no labels.
const MASKED: bool = true;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = info[0];
    let bp = info[1];
    let q4 = bp / 4u;
    let q = gid.x;
    if (q >= q4) {
        return;
    }
    let j = q * 4u;
    let jj = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
    let last = n - 1u;
    var lab = vec4<f32>(0.0);
    if (MASKED) {
        lab = vec4<f32>(labels[min(j, last)], labels[min(j + 1u, last)],
                        labels[min(j + 2u, last)], labels[min(j + 3u, last)]);
    }
    var m = vec4<f32>(NEG_INF);
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < n; i++) {
        var keep = vec4<bool>(true);
        if (MASKED) {
            keep = (jj == vec4<u32>(i)) | (lab != vec4<f32>(labels[i]));
        }
        let v = logits[i * q4 + q];
        let mx = max(m, select(vec4<f32>(NEG_INF), v, keep));
        s = s * exp(m - mx) + select(vec4<f32>(0.0), exp(v - mx), keep);
        m = mx;
    }
    let out = select(vec4<f32>(0.0), m + log(s), jj < vec4<u32>(n));
    stats[bp + j] = out.x;
    stats[bp + j + 1u] = out.y;
    stats[bp + j + 2u] = out.z;
    stats[bp + j + 3u] = out.w;
}
