// AdamW for a group of parameters of any shapes in one launch (multi-tensor, as PyTorch's
// foreach/fused AdamW): burn's AdamW step, element by element, in the order of its ops:
//   m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²,
//   p ← p·keep − lr · (m / c₁) / (√(v / c₂) + ε),   keep = 1 − lr·wd, cₖ = 1 − βₖᵗ.
// Bindings (f32), four per parameter i of the group, at 4i, each the parameter's size: param
// (read), grad (read, then overwritten with the new param), moment_1 and moment_2 (read, then
// rewritten in place); then the info words (u32; f32 values as their bits):
//   [0] parameters in the group, [1] workgroups in all, [2..8) unused;
//   at 8 + 16i: parameter i's first workgroup, its elements, lr, keep, c₁, c₂, β₁, β₂, ε, then
//   seven unused.
// Workgroup: 256 invocations, SPAN elements each (256 apart). Workgroups are numbered
// x + y·(groups in x); parameter i owns [first_i, first_{i+1}). Dispatch (min(total, 65535),
// ceil(total / 65535), 1).
//
// WGSL cannot index bindings, so src/train/adamw_gpu.rs writes the group's declarations, the
// `owner` function (src/wgsl.rs: which parameter a workgroup works on) and one `case` per
// parameter in place of the three marker lines.

//@bindings
//@owner

struct Step {
    lr: f32,
    keep: f32,
    c1: f32,
    c2: f32,
    b1: f32,
    b2: f32,
    eps: f32,
}

fn adamw(p: f32, g: f32, m: f32, v: f32, s: Step) -> vec3<f32> {
    let m_new = m * s.b1 + g * (1.0 - s.b1);
    let v_new = v * s.b2 + (g * g) * (1.0 - s.b2);
    let delta = (m_new / s.c1) / (sqrt(v_new / s.c2) + s.eps);
    return vec3<f32>(p * s.keep - delta * s.lr, m_new, v_new);
}

// Runs of 256 elements per workgroup (a parameter owns ceil(elements / (256·SPAN)) workgroups).
const SPAN: u32 = 32u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let group = wid.x + wid.y * groups.x;
    if (group >= info[1]) {
        return;
    }
    let i = owner(group);
    let at = 8u + 16u * i;
    // This workgroup's elements: SPAN consecutive runs of 256, one element of each per invocation.
    let start = (group - info[at]) * (256u * SPAN) + lid.x;
    let n = info[at + 1u];
    let s = Step(
        bitcast<f32>(info[at + 2u]),
        bitcast<f32>(info[at + 3u]),
        bitcast<f32>(info[at + 4u]),
        bitcast<f32>(info[at + 5u]),
        bitcast<f32>(info[at + 6u]),
        bitcast<f32>(info[at + 7u]),
        bitcast<f32>(info[at + 8u]),
    );
    switch i {
        //@cases
        default: {}
    }
}
