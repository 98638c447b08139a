// Attention backward, the key side: one invocation per (key row j, batch·head), the
// probabilities recomputed from lse as on the query side (attention_backward_q.wgsl, which wrote
// D_i = dO_i·O_i):
//   dv_j = Σ_i p_ij dO_i
//   dk_j = scale Σ_i p_ij (dO_i·v_j − D_i) q_i
// over i ≥ j when CAUSAL.
// Bindings (f32; rows as in attention_forward.wgsl, read as vec4):
//   0 q     [batch, seq, hidden] read
//   1 k     [batch, seq, hidden] read
//   2 v     [batch, seq, hidden] read
//   3 do    [batch, seq, hidden] read (the gradient of the output)
//   4 stats [2, batch, heads, seq] read: lse, then D
//   5 dk    [batch, seq, hidden] written
//   6 dv    [batch, seq, hidden] written
//   7 info  u32 [batch, seq, heads, bits of scale]
// Workgroup: 64 invocations over key rows; dispatch (ceil(seq / 64), batch·heads, 1).
@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> d_o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dv: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> info: array<u32>;

const QUADS: u32 = 16u; // head_dim / 4, filled in per model
const CAUSAL: bool = false; // filled in per tower

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let batch = info[0];
    let seq = info[1];
    let heads = info[2];
    let scale = bitcast<f32>(info[3]);
    let j = gid.x;
    let bh = gid.y;
    if (j >= seq) {
        return;
    }
    let b = bh / heads;
    let h = bh % heads;
    let stride = heads * QUADS;
    let row_j = (b * seq + j) * stride + h * QUADS;
    let deltas = batch * heads * seq;
    var kj: array<vec4<f32>, QUADS>;
    var vj: array<vec4<f32>, QUADS>;
    var dk_acc: array<vec4<f32>, QUADS>;
    var dv_acc: array<vec4<f32>, QUADS>;
    for (var c = 0u; c < QUADS; c++) {
        kj[c] = k[row_j + c] * scale;
        vj[c] = v[row_j + c];
        dk_acc[c] = vec4<f32>(0.0);
        dv_acc[c] = vec4<f32>(0.0);
    }
    var start = 0u;
    if (CAUSAL) {
        start = j;
    }
    for (var i = start; i < seq; i++) {
        let row_i = (b * seq + i) * stride + h * QUADS;
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < QUADS; c++) {
            s += dot(q[row_i + c], kj[c]);
            dp += dot(d_o[row_i + c], vj[c]);
        }
        let p = exp(s - stats[bh * seq + i]);
        let ds = p * (dp - stats[deltas + bh * seq + i]);
        for (var c = 0u; c < QUADS; c++) {
            dv_acc[c] += p * d_o[row_i + c];
            dk_acc[c] += ds * q[row_i + c];
        }
    }
    for (var c = 0u; c < QUADS; c++) {
        dk[row_j + c] = dk_acc[c] * scale;
        dv[row_j + c] = dv_acc[c];
    }
}
