// Attention backward, the query side: one invocation per (query row i, batch·head), the
// probabilities recomputed from the forward's lse (p_ij = exp(scale·q_i·k_j − lse_i)):
//   D_i  = dO_i·O_i
//   dS_ij = p_ij (dO_i·v_j − D_i)
//   dq_i = scale Σ_j dS_ij k_j
// and D written out for the key side (attention_backward_kv.wgsl), which runs next.
// Bindings (f32; rows as in attention_forward.wgsl, read as vec4):
//   0 q     [batch, seq, hidden] read
//   1 k     [batch, seq, hidden] read
//   2 v     [batch, seq, hidden] read
//   3 o     [batch, seq, hidden] read (the forward's output)
//   4 do    [batch, seq, hidden] read (the gradient of the output)
//   5 stats [2, batch, heads, seq]: lse read (first half), D written (second half)
//   6 dq    [batch, seq, hidden] written
//   7 info  u32 [batch, seq, heads, bits of scale]
// Workgroup: 64 invocations over query rows; dispatch (ceil(seq / 64), batch·heads, 1).
@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> d_o: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> info: array<u32>;

const QUADS: u32 = 16u; // head_dim / 4, filled in per model
const CAUSAL: bool = false; // filled in per tower

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let batch = info[0];
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
    let stride = heads * QUADS;
    let row_i = (b * seq + i) * stride + h * QUADS;
    var qi: array<vec4<f32>, QUADS>;
    var doi: array<vec4<f32>, QUADS>;
    var acc: array<vec4<f32>, QUADS>;
    var delta = 0.0;
    for (var c = 0u; c < QUADS; c++) {
        qi[c] = q[row_i + c] * scale;
        doi[c] = d_o[row_i + c];
        delta += dot(doi[c], o[row_i + c]);
        acc[c] = vec4<f32>(0.0);
    }
    let lse_i = stats[bh * seq + i];
    var end = seq;
    if (CAUSAL) {
        end = i + 1u;
    }
    for (var j = 0u; j < end; j++) {
        let row_j = (b * seq + j) * stride + h * QUADS;
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < QUADS; c++) {
            s += dot(qi[c], k[row_j + c]);
            dp += dot(doi[c], v[row_j + c]);
        }
        let ds = exp(s - lse_i) * (dp - delta);
        for (var c = 0u; c < QUADS; c++) {
            acc[c] += ds * k[row_j + c];
        }
    }
    for (var c = 0u; c < QUADS; c++) {
        dq[row_i + c] = acc[c] * scale;
    }
    stats[batch * heads * seq + bh * seq + i] = delta;
}
