// Multi-head attention forward, one invocation per (query row, batch·head), the softmax online
// (running max and sum, one pass over the keys), as FlashAttention does:
//   O_i = Σ_j softmax_j(scale·q_i·k_j) v_j,   lse_i = log Σ_j exp(scale·q_i·k_j)
// with j ≤ i when CAUSAL. q, k, v and O are the projections' own layout [batch, seq, hidden]:
// head h is columns h·HD … h·HD + HD − 1 of each row, so no transposes are needed either side.
// The backward (attention_backward_*.wgsl) recomputes the probabilities from lse: nothing of
// size seq² is stored.
// Bindings (f32; q, k, v, O read as vec4):
//   0 q    [batch, seq, hidden] read
//   1 k    [batch, seq, hidden] read
//   2 v    [batch, seq, hidden] read
//   3 o    [batch, seq, hidden] written
//   4 lse  [2, batch, heads, seq]: the first half written (the second is the backward's)
//   5 info u32 [batch, seq, heads, bits of scale]
// Workgroup: 64 invocations over query rows; dispatch (ceil(seq / 64), batch·heads, 1).
@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

const QUADS: u32 = 16u; // head_dim / 4, filled in per model
const CAUSAL: bool = false; // filled in per tower
const NEG_INF: f32 = -3.0e38;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seq = info[1];
    let heads = info[2];
    let scale = bitcast<f32>(info[3]);
    let i = gid.x;
    let bh = gid.y;
    if (i >= seq) {
        return;
    }
    let b = bh / heads;
    let h = bh % heads;
    let stride = heads * QUADS; // one row of [batch, seq, hidden], in vec4
    let row_i = (b * seq + i) * stride + h * QUADS;
    var qi: array<vec4<f32>, QUADS>;
    var acc: array<vec4<f32>, QUADS>;
    for (var c = 0u; c < QUADS; c++) {
        qi[c] = q[row_i + c] * scale;
        acc[c] = vec4<f32>(0.0);
    }
    var m = NEG_INF;
    var l = 0.0;
    var end = seq;
    if (CAUSAL) {
        end = i + 1u;
    }
    for (var j = 0u; j < end; j++) {
        let row_j = (b * seq + j) * stride + h * QUADS;
        var s = 0.0;
        for (var c = 0u; c < QUADS; c++) {
            s += dot(qi[c], k[row_j + c]);
        }
        let m_new = max(m, s);
        let correction = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * correction + p;
        for (var c = 0u; c < QUADS; c++) {
            acc[c] = acc[c] * correction + p * v[row_j + c];
        }
        m = m_new;
    }
    let inv = 1.0 / l;
    for (var c = 0u; c < QUADS; c++) {
        o[row_i + c] = acc[c] * inv;
    }
    lse[bh * seq + i] = m + log(l);
}
