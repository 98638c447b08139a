//! AdamW on wgpu for every parameter of a model in a few launches (multi-tensor, as PyTorch's
//! `foreach`/`fused` AdamW does on CUDA), with burn's `ModuleOptimizer` keeping the state.
//!
//! burn steps one parameter at a time, and its fusion can only merge element-wise work over one
//! shape: AdamW was 89 of the 516 launches of a tiny FLYP step on llvmpipe. Here the whole update
//! is one fusion operation whose kernel (`shaders/adamw.wgsl`) takes as many parameters per launch
//! as the adapter has storage bindings for (four each: the parameter read; its gradient and
//! moments rewritten in place, the new parameter going into the gradient's buffer, as PyTorch's
//! fused AdamW updates in place: no memory beyond what the step already holds).
//!
//! `ModuleOptimizer::step` hands [`FusedAdamW`](super::adamw::FusedAdamW) one parameter at a time
//! and keeps each parameter's state by its id, so [`step`] runs it twice: the first pass collects
//! every wgpu f32 parameter, its gradient and its state (taking the state out of the optimizer,
//! and stepping any other parameter as before), then one operation computes all the updates; the
//! second pass visits the same parameters in the same order and hands each its new value and
//! state. The state stays burn's `AdamWState`: checkpoints are unchanged.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use burn::backend::Cube;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::CubeTensor;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, LearningRate, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::DType;
use burn_cubecl::cubecl::prelude::CubeDim;

use crate::shader;
use crate::train::adamw::AdamWScalars;
use crate::wgsl::{Pass as Launches, Variant, grid, owner_source, register_fused};

/// The fusion tensor of a wgpu tensor.
type Fused = FloatTensor<Cube>;

/// One parameter's update, collected by the first pass.
struct Pending {
    param: Fused,
    grad: Fused,
    moment_1: Fused,
    moment_2: Fused,
    scalars: AdamWScalars,
    /// The step count after this update (AdamW's t).
    time: usize,
}

/// The new parameter and moments of one collected update, as fusion tensors (the moments are the
/// collected ones' buffers, rewritten).
struct Done {
    param: Fused,
    moment_1: Fused,
    moment_2: Fused,
    time: usize,
}

/// Which pass of [`step`] is running on this thread, with one entry per parameter visited, in the
/// order `ModuleOptimizer` visits them (`None`: stepped as usual by the first pass).
enum Pass {
    /// The updates collected so far, and the factor every gradient is multiplied by first.
    Collect(Vec<Option<Pending>>, Option<Box<Tensor<1>>>),
    Apply(VecDeque<Option<Done>>),
}

thread_local! {
    static PASS: RefCell<Option<Pass>> = const { RefCell::new(None) };
}

/// Off: [`step`] is `ModuleOptimizer::step` (burn's AdamW one parameter at a time on wgpu), for
/// `flyp bench step`'s before/after comparison.
static BATCHED: AtomicBool = AtomicBool::new(true);

/// Turn the multi-tensor update on (the default) or off for this process.
pub fn set_batched(on: bool) {
    BATCHED.store(on, Ordering::Relaxed);
}

/// What [`FusedAdamW`](super::adamw::FusedAdamW) does with one parameter.
pub(crate) enum Intercept<const D: usize> {
    /// Not part of a batched step: step it as usual, with this gradient (multiplied by the step's
    /// factor, when it has one).
    No(Box<Tensor<D>>),
    /// Collected (first pass): hand the parameter back unchanged and keep no state; the batched
    /// update owns the moments now and rewrites them in place.
    Collected,
    /// Its update (second pass): the new parameter and moments, and the step count after it (the
    /// second pass gets no state: the first took it).
    Applied(Box<[Tensor<D>; 3]>, usize),
    /// Second pass, and not collected in the first: it was stepped then; hand it back unchanged.
    Skip,
}

/// True when `tensor` and `grad` can go through the batched kernel: f32 on wgpu, and a state
/// without AMSGrad's maximum (`plain`).
fn batchable<const D: usize>(tensor: &Tensor<D>, grad: &Tensor<D>, plain: bool) -> bool {
    plain
        && tensor.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && crate::model::gpu::on_cube(tensor)
        && tensor.dims() == grad.dims()
}

/// Called by `FusedAdamW::step` for every parameter.
pub(crate) fn intercept<const D: usize>(
    tensor: &Tensor<D>,
    grad: Tensor<D>,
    plain: bool,
    moments: Option<(&Tensor<D>, &Tensor<D>)>,
    scalars: AdamWScalars,
    time: usize,
) -> Intercept<D> {
    PASS.with_borrow_mut(|pass| match pass {
        None => Intercept::No(Box::new(grad)),
        Some(Pass::Collect(visited, factor)) => {
            if !batchable(tensor, &grad, plain) {
                visited.push(None);
                return Intercept::No(Box::new(match factor {
                    Some(f) => grad * f.clone().reshape([1; D]),
                    None => grad,
                }));
            }
            let fused = |t: Tensor<D>| {
                t.try_into_primitive::<Cube>()
                    .expect("batchable: a wgpu tensor")
            };
            let (moment_1, moment_2) = match moments {
                Some((m, v)) => (m.clone(), v.clone()),
                None => (tensor.zeros_like(), tensor.zeros_like()),
            };
            visited.push(Some(Pending {
                param: fused(tensor.clone()),
                grad: fused(grad),
                moment_1: fused(moment_1),
                moment_2: fused(moment_2),
                scalars,
                time,
            }));
            Intercept::Collected
        }
        Some(Pass::Apply(done)) => {
            // The same parameters in the same order as the first pass (the same module and
            // gradients); `grad` is a placeholder here.
            let next = done.pop_front();
            debug_assert!(next.is_some(), "the second pass visits what the first did");
            let Some(Some(next)) = next else {
                return Intercept::Skip;
            };
            debug_assert_eq!(next.param.shape.dims(), tensor.dims());
            let back = |t: Fused| Tensor::<D>::from_primitive::<Cube>(t);
            Intercept::Applied(
                Box::new([back(next.param), back(next.moment_1), back(next.moment_2)]),
                next.time,
            )
        }
    })
}

/// `optim.step(lr, module, grads)` with every gradient first multiplied by `factor` (`[1]`, on the
/// model's device: clipping's and unscaling's). Every wgpu f32 parameter is updated by the batched
/// kernel, which applies the factor as it reads each gradient. That needs `optim` to run
/// [`FusedAdamW`](super::adamw::FusedAdamW), what [`super::adamw::adamw`] builds, which also
/// applies the factor to any parameter it steps itself. Elsewhere (Flex) the gradients are
/// multiplied by the factor, then `ModuleOptimizer` steps as usual.
pub fn step<M: Module>(
    optim: &mut ModuleOptimizer,
    lr: LearningRate,
    module: M,
    mut grads: GradientsParams,
    factor: Option<Tensor<1>>,
) -> M {
    if !BATCHED.load(Ordering::Relaxed) || !on_wgpu(&module) {
        // Elsewhere no placeholders: on Flex they would share the parameters' storage and make
        // its in-place update copy them.
        if let Some(factor) = factor {
            super::clip_grad::scale_grads(&module, &mut grads, factor);
        }
        return optim.step(lr, module, grads);
    }
    let again = placeholders(&module, &grads);
    PASS.set(Some(Pass::Collect(
        Vec::new(),
        factor.clone().map(Box::new),
    )));
    let module = optim.step(lr, module, grads);
    let visited = match PASS.take() {
        Some(Pass::Collect(visited, _)) if visited.iter().any(Option::is_some) => visited,
        Some(Pass::Collect(visited, _)) => {
            debug_assert!(
                factor.is_none() || !visited.is_empty(),
                "only FusedAdamW applies the factor"
            );
            return module; // nothing batched: the first pass stepped everything
        }
        _ => return module,
    };
    let factor = factor.map(|f| {
        f.try_into_primitive::<Cube>()
            .expect("on_wgpu: a wgpu tensor")
    });
    PASS.set(Some(Pass::Apply(update_all(visited, factor))));
    let module = optim.step(lr, module, again);
    let left = match PASS.take() {
        Some(Pass::Apply(done)) => done.len(),
        _ => 0,
    };
    debug_assert_eq!(left, 0, "every collected update is handed back");
    module
}

/// True when `module`'s first parameter is on a wgpu device (a model lives on one device).
fn on_wgpu<M: Module>(module: &M) -> bool {
    struct First(Option<bool>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                self.0 = Some(crate::model::gpu::on_cube(&param.val()));
            }
        }
    }
    let mut first = First(None);
    module.visit(&mut first);
    first.0.unwrap_or(false)
}

/// For the second pass: a `GradientsParams` with an entry for every parameter that has a gradient
/// (so that `ModuleOptimizer` visits the same parameters again), each the parameter's own value.
/// The gradients themselves are not kept: once the first pass has handed each to the optimizer,
/// the batched update holds the only reference and writes the new parameter into its buffer.
fn placeholders<M: Module>(module: &M, grads: &GradientsParams) -> GradientsParams {
    struct Placeholders<'a> {
        grads: &'a GradientsParams,
        into: GradientsParams,
    }
    impl ModuleVisitor for Placeholders<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.grads.get::<D>(param.id).is_some() {
                self.into.register::<D>(param.id, param.val().inner());
            }
        }
    }
    let mut visitor = Placeholders {
        grads,
        into: GradientsParams::new(),
    };
    module.visit(&mut visitor);
    visitor.into
}

/// Register one fusion operation computing every collected update; returns its outputs in the
/// order visited (`None` where nothing was collected).
fn update_all(visited: Vec<Option<Pending>>, factor: Option<Fused>) -> VecDeque<Option<Done>> {
    let collected: Vec<bool> = visited.iter().map(Option::is_some).collect();
    let pending: Vec<Pending> = visited.into_iter().flatten().collect();
    let mut inputs = Vec::with_capacity(4 * pending.len());
    let mut outputs = Vec::with_capacity(3 * pending.len());
    let mut steps = Vec::with_capacity(pending.len());
    let mut times = Vec::with_capacity(pending.len());
    for p in pending {
        let (shape, dtype) = (p.param.shape.clone(), p.param.dtype);
        inputs.extend([p.param, p.grad, p.moment_1, p.moment_2]);
        outputs.extend(std::iter::repeat_n((shape, dtype), 3));
        steps.push(p.scalars);
        times.push(p.time);
    }
    let scaled = factor.is_some();
    inputs.extend(factor);
    let run = move |tensors: &[CubeTensor]| {
        let (tensors, factor) = tensors.split_at(tensors.len() - usize::from(scaled));
        launch(tensors, &steps, factor.first())
    };
    let mut tensors = register_fused("flyp_adamw", inputs, outputs, run).into_iter();
    let mut times = times.into_iter();
    collected
        .into_iter()
        .map(|was| {
            if !was {
                return None;
            }
            let (Some(param), Some(moment_1), Some(moment_2), Some(time)) =
                (tensors.next(), tensors.next(), tensors.next(), times.next())
            else {
                unreachable!("three outputs were registered per update")
            };
            Some(Done {
                param,
                moment_1,
                moment_2,
                time,
            })
        })
        .collect()
}

/// Workgroups per row of the dispatch: WebGPU's limit per dimension; more go in further rows.
static WORKGROUPS_PER_ROW: AtomicU32 = AtomicU32::new(65535);

/// Tests: fewer workgroups per row, so that a small update spans several rows of the dispatch.
#[doc(hidden)]
pub fn set_workgroups_per_row(n: u32) {
    WORKGROUPS_PER_ROW.store(n.clamp(1, 65535), Ordering::Relaxed);
}

/// Storage bindings per parameter: the param, then the grad and both moments, rewritten in place
/// (the grad's buffer receives the new param).
const BINDINGS_PER_PARAM: usize = 4;
/// Elements per workgroup: the shader's `@workgroup_size` (256) times its `SPAN` (32).
const WORKGROUP: usize = 256 * 32;
/// Info words: a header, then a block per parameter.
const HEADER: usize = 8;
const BLOCK: usize = 16;
/// The most parameters per launch, whatever the adapter allows: the shader scans them linearly.
const MOST_PER_LAUNCH: usize = 64;

/// Parameters per launch on `t`'s adapter: as many as its storage bindings allow (one is the info,
/// one the gradients' factor).
fn params_per_launch(t: &CubeTensor) -> usize {
    let bindings = t.client.properties().hardware.max_bindings as usize;
    (bindings.saturating_sub(2) / BINDINGS_PER_PARAM).clamp(1, MOST_PER_LAUNCH)
}

/// Run the kernel over `tensors` (param, grad, moment_1, moment_2 for each of `steps`), in groups
/// of [`params_per_launch`], each gradient multiplied by `factor` (`[1]`) first when there is one;
/// returns the new param, moment_1 and moment_2 of each, in order. They are written in place (the
/// new param into the grad's buffer) where nothing else holds the buffers (the optimizer hands
/// them over), else into a copy.
fn launch(
    tensors: &[CubeTensor],
    steps: &[AdamWScalars],
    factor: Option<&CubeTensor>,
) -> Vec<CubeTensor> {
    let reference = &tensors[0];
    let per_launch = params_per_launch(reference);
    let mut outputs = Vec::with_capacity(3 * steps.len());
    let mut pass = Launches::default();
    for (group, group_steps) in tensors.chunks(4 * per_launch).zip(steps.chunks(per_launch)) {
        let mut info = vec![0; HEADER];
        info[0] = group_steps.len() as u32;
        let mut buffers = Vec::with_capacity(BINDINGS_PER_PARAM * group_steps.len());
        let mut workgroups = 0usize;
        for (four, s) in group.chunks(4).zip(group_steps) {
            let elements = four[0].meta.shape().num_elements();
            let owned = |t: &CubeTensor| if t.can_mut() { t.clone() } else { t.copy() };
            // The new parameter goes into the gradient's buffer.
            let (new_param, moment_1, moment_2) =
                (owned(&four[1]), owned(&four[2]), owned(&four[3]));
            let mut block = [0; BLOCK];
            block[..9].copy_from_slice(&[
                workgroups as u32,
                elements as u32,
                s.lr.to_bits(),
                s.keep.to_bits(),
                s.correction_1.to_bits(),
                s.correction_2.to_bits(),
                s.beta_1.to_bits(),
                s.beta_2.to_bits(),
                s.epsilon.to_bits(),
            ]);
            info.extend(block);
            workgroups += elements.div_ceil(WORKGROUP);
            buffers.extend([&four[0], &new_param, &moment_1, &moment_2].map(|t| t.handle.clone()));
            outputs.extend([new_param, moment_1, moment_2]);
        }
        buffers.extend(factor.map(|f| f.handle.clone()));
        info[1] = workgroups as u32;
        let kernel = shader!(
            "adamw.wgsl",
            Variant::AdamW {
                params: group_steps.len() as u32,
                scaled: factor.is_some(),
            }
        );
        let buffers: Vec<_> = buffers.iter().collect();
        pass.launch(
            kernel,
            CubeDim::new_1d(256),
            grid(
                workgroups,
                WORKGROUPS_PER_ROW.load(Ordering::Relaxed) as usize,
            ),
            &buffers,
            &info,
        );
    }
    // The learning rate and the corrections change every step: not kept with the info cache.
    pass.run_once(reference);
    outputs
}

/// The AdamW shader for a group of `params` parameters: its bindings and one `case` each; with
/// `scaled`, a `factor` binding after the parameters' that multiplies every gradient.
pub fn adamw_source(text: &str, params: u32, scaled: bool) -> String {
    const BINDINGS: &str = "//@bindings";
    const CASES: &str = "//@cases";
    const OWNER: &str = "//@owner";
    debug_assert!(text.contains(BINDINGS) && text.contains(CASES) && text.contains(OWNER));
    let names = ["param", "grad", "m1", "m2"];
    let times = if scaled { " * factor[0]" } else { "" };
    let mut bindings = String::new();
    let mut cases = String::new();
    for i in 0..params as usize {
        for (j, name) in names.iter().enumerate() {
            bindings.push_str(&format!(
                "@group(0) @binding({}) var<storage, read_write> {name}_{i}: array<f32>;\n",
                BINDINGS_PER_PARAM * i + j
            ));
        }
        cases.push_str(&format!(
            "case {i}u: {{\n\
             \x20           for (var j = 0u; j < SPAN; j++) {{\n\
             \x20               let e = start + j * 256u;\n\
             \x20               if (e >= n) {{ break; }}\n\
             \x20               let r = adamw(param_{i}[e], grad_{i}[e]{times}, m1_{i}[e], m2_{i}[e], s);\n\
             \x20               grad_{i}[e] = r.x;\n\
             \x20               m1_{i}[e] = r.y;\n\
             \x20               m2_{i}[e] = r.z;\n\
             \x20           }}\n\
             \x20       }}\n        "
        ));
    }
    let mut next = BINDINGS_PER_PARAM * params as usize;
    if scaled {
        bindings.push_str(&format!(
            "@group(0) @binding({next}) var<storage, read_write> factor: array<f32>;\n"
        ));
        next += 1;
    }
    bindings.push_str(&format!(
        "@group(0) @binding({next}) var<storage, read_write> info: array<u32>;"
    ));
    text.replace(BINDINGS, &bindings)
        .replace(OWNER, &owner_source(BLOCK as u32))
        .replace(CASES, &cases)
}
