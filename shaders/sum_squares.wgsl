// The sum of squares of a group of tensors of any shapes in one launch (multi-tensor, as
// PyTorch's foreach norm): each workgroup sums x² over its share of one tensor and writes the
// sum to its own element of `partials`; reduce_sum.wgsl then adds the partials of every launch.
// Bindings (f32), one per tensor i of the group, at i, each the tensor's size (read); then
// partials (written at [base + workgroup]) and the info words (u32):
//   [0] tensors in the group, [1] workgroups in all, [2] base, [3..8) unused;
//   at 8 + 2i: tensor i's first workgroup, its elements.
// Workgroup: 256 invocations, SPAN elements each (256 apart), then a tree sum in workgroup
// memory. Workgroups are numbered x + y·(groups in x); tensor i owns [first_i, first_{i+1}).
// Dispatch (min(total, 65535), ceil(total / 65535), 1).
//
// WGSL cannot index bindings, so src/train/grads_gpu.rs writes the group's declarations, the
// `owner` function (src/wgsl.rs: which tensor a workgroup works on) and one `case` per tensor in
// place of the three marker lines.

//@bindings
//@owner

const SPAN: u32 = 32u;
var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // No early return before the barriers: every invocation of a workgroup must reach them.
    let group = wid.x + wid.y * groups.x;
    let live = group < info[1];
    let i = owner(group);
    let at = 8u + 2u * i;
    // This workgroup's elements: SPAN consecutive runs of 256, one element of each per invocation.
    let start = (group - min(group, info[at])) * (256u * SPAN) + lid.x;
    let n = select(0u, info[at + 1u], live);
    var sum = 0.0;
    switch i {
        //@cases
        default: {}
    }
    sums[lid.x] = sum;
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if (lid.x < stride) {
            sums[lid.x] = sums[lid.x] + sums[lid.x + stride];
        }
    }
    if (live && lid.x == 0u) {
        partials[info[2] + group] = sums[0];
    }
}
