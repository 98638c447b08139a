//! Launching hand-written WGSL (`shaders/`) on burn's cubecl (wgpu) backend: a shader and its
//! variant as a cubecl kernel source, and a pass of launches that binds contiguous buffers in the
//! order of the shader's `@binding`s, then a small u32 info buffer. Used by the contrastive core
//! ([`crate::contrastive::kernels`]) and the towers' fused ops ([`crate::model::gpu`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use burn::backend::Cube;
use burn::backend::fusion::custom::{
    CustomOpIr, HandleContainer, OperationFn, OperationIr, StreamId, TensorIr,
};
use burn::backend::fusion::{FusionBackend, FusionRuntime};
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{
    CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
};
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::prelude::{CubeCount, CubeDim, KernelId};
use burn_cubecl::cubecl::server::{Handle, KernelArguments};

use crate::contrastive::sources::{MatmulBlock, Orientation, masking_source, matmul_source};

/// The fusion server's handle type on wgpu.
type FusionHandle = <<CubeBackend as FusionBackend>::FusionRuntime as FusionRuntime>::FusionHandle;

/// One hand-written shader: its file name, text and variant. The text of a variant is made only
/// when cubecl compiles it (on a cache miss), not at every launch.
pub struct Wgsl {
    pub name: &'static str,
    pub text: &'static str,
    pub variant: Variant,
}

/// Which form of a shader's text runs (part of the kernel's cache key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The file as it is.
    AsWritten,
    /// A shader with class-collision masking (`const MASKED: bool = true;`) on or off.
    Masked(bool),
    /// The matrix product's template filled in.
    Matmul(MatmulBlock, Orientation),
    /// An attention shader for heads of `head_dim` (a multiple of 4) with the causal mask on or
    /// off ([`crate::model::gpu`]).
    Attention { head_dim: u32, causal: bool },
    /// The multi-tensor AdamW shader for a group of `params` parameters
    /// ([`crate::train::adamw_gpu`]), each gradient multiplied by a factor read from a buffer
    /// first when `scaled` (clipping, unscaling).
    AdamW { params: u32, scaled: bool },
    /// The multi-tensor sum-of-squares shader for a group of `tensors` tensors
    /// ([`crate::train::grads_gpu`]).
    SumSquares { tensors: u32 },
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(match self.variant {
            Variant::AsWritten => self.text.to_string(),
            Variant::Masked(masked) => masking_source(self.text, masked),
            Variant::Matmul(block, orientation) => matmul_source(block, orientation),
            Variant::Attention { head_dim, causal } => {
                crate::model::gpu::attention_source(self.text, head_dim, causal)
            }
            Variant::AdamW { params, scaled } => {
                crate::train::adamw_gpu::adamw_source(self.text, params, scaled)
            }
            Variant::SumSquares { tensors } => {
                crate::train::grads_gpu::sum_squares_source(self.text, tensors)
            }
        })
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.variant))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

#[macro_export]
#[doc(hidden)]
macro_rules! shader {
    ($name:literal) => {
        $crate::shader!($name, $crate::wgsl::Variant::AsWritten)
    };
    ($name:literal, $variant:expr) => {
        $crate::wgsl::Wgsl {
            name: $name,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name)),
            variant: $variant,
        }
    };
}

/// The launches of one forward or backward pass, recorded, then sent with all their small info
/// arrays in one upload (each starting on a 256-byte boundary: storage binding offsets must be
/// aligned).
#[derive(Default)]
pub struct Pass {
    launches: Vec<Launch>,
    info: Vec<u32>,
}

/// One recorded launch: the kernel, its workgroup, the workgroup count, the buffers and where its
/// info words start.
struct Launch {
    kernel: Wgsl,
    workgroup: CubeDim,
    groups: (u32, u32, u32),
    buffers: Vec<Handle>,
    info_at: usize,
}

/// The alignment of each launch's info words: 64 words, 256 bytes.
const SLOT: usize = 64;

impl Pass {
    /// Record `kernel` over `groups` workgroups with `buffers` bound in order, then `info`.
    pub fn launch(
        &mut self,
        kernel: Wgsl,
        workgroup: CubeDim,
        groups: (u32, u32, u32),
        buffers: &[&Handle],
        info: &[u32],
    ) {
        let start = self.info.len().next_multiple_of(SLOT);
        self.info.resize(start, 0);
        self.info.extend_from_slice(info);
        // Every launch binds at least one slot's worth, as before the slots could be longer.
        self.info.resize(
            (start + info.len())
                .next_multiple_of(SLOT)
                .max(start + SLOT),
            0,
        );
        let buffers = buffers.iter().map(|h| (*h).clone()).collect();
        self.launches.push(Launch {
            kernel,
            workgroup,
            groups,
            buffers,
            info_at: start,
        });
    }

    /// Upload the info and launch everything recorded, in order, on `reference`'s device. The
    /// info words are uploaded once per device and kept ([`info_buffer`]): for passes whose words
    /// repeat from step to step.
    pub fn run(self, reference: &CubeTensor) {
        let info = info_buffer(reference, &self.info);
        self.launch_all(reference, info);
    }

    /// [`Self::run`] for info words that change every time (a step's learning rate): uploaded
    /// afresh, not kept.
    pub fn run_once(self, reference: &CubeTensor) {
        let bytes: Vec<u8> = self.info.iter().flat_map(|w| w.to_le_bytes()).collect();
        let info = reference.client.create_from_slice(&bytes);
        self.launch_all(reference, info);
    }

    fn launch_all(self, reference: &CubeTensor, info: Handle) {
        let client = &reference.client;
        for launch in self.launches {
            let slot = info.clone().offset_start((launch.info_at * 4) as u64);
            let bindings = launch
                .buffers
                .into_iter()
                .map(|h| h.binding())
                .chain(std::iter::once(slot.binding()))
                .collect();
            let (x, y, z) = launch.groups;
            client.launch(
                Box::new(SourceKernel::new(launch.kernel, launch.workgroup)),
                CubeCount::Static(x, y, z),
                KernelArguments::new().with_buffers(bindings),
            );
        }
    }
}

/// The info words of a pass, uploaded once per device and reused: a training step launches the
/// same passes with the same sizes every step, and on some adapters (llvmpipe) each upload costs a
/// queue submission that breaks the batching of the launches around it. A handful of entries per
/// model (one per pass and size); kept for the process's life.
fn info_buffer(reference: &CubeTensor, words: &[u32]) -> Handle {
    type Cache = HashMap<(String, Vec<u32>), Handle>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let key = (format!("{:?}", reference.device), words.to_vec());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| {
            let bytes: Vec<u8> = words.iter().flat_map(|v| v.to_le_bytes()).collect();
            reference.client.create_from_slice(&bytes)
        })
        .clone()
}

static POISON: AtomicBool = AtomicBool::new(false);

/// Tests: fill every kernel output with NaN before the kernel runs, so that an element a kernel
/// forgets to write cannot pass by holding a plausible old value.
pub fn poison_outputs(on: bool) {
    POISON.store(on, Ordering::SeqCst);
}

/// A new contiguous f32 tensor on `like`'s device. Its contents are whatever the kernel writes.
pub fn empty(like: &CubeTensor, shape: impl Into<Shape>) -> CubeTensor {
    let shape = shape.into();
    let elements = shape.num_elements().max(1);
    let handle = if POISON.load(Ordering::Relaxed) {
        let nan: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), elements)
            .flatten()
            .collect();
        like.client.create_from_slice(&nan)
    } else {
        like.client.empty(elements * DType::F32.size())
    };
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

pub fn f32_contiguous(t: CubeTensor) -> CubeTensor {
    assert_eq!(
        t.dtype,
        DType::F32,
        "the hand-written kernels run in f32 (lavapipe has no f16)"
    );
    into_contiguous(t)
}

/// A dispatch of `workgroups` workgroups in rows of at most `per_row` (each dimension of a dispatch
/// is limited; WebGPU's limit is 65 535): `(x, y, 1)`, at least one workgroup. Shaders number a
/// workgroup x + y·(groups in x) and skip those past the count.
pub fn grid(workgroups: usize, per_row: usize) -> (u32, u32, u32) {
    let x = workgroups.clamp(1, per_row.max(1));
    (x as u32, workgroups.div_ceil(x).max(1) as u32, 1)
}

/// Register one custom fusion operation `id` on the current stream of wgpu's fusion backend:
/// `inputs` (fusion tensors on one device) are handed to `run` as contiguous f32 tensors when the
/// stream executes it, and `run` returns one tensor per entry of `outputs` (shape, dtype), whose
/// fusion tensors this returns in order. burn's `backend_extension` macro has no `Vec` input;
/// this is how its expansion builds an operation, for the multi-tensor kernels
/// ([`crate::train::adamw_gpu`], [`crate::train::grads_gpu`]).
pub fn register_fused(
    id: &str,
    inputs: Vec<FloatTensor<Cube>>,
    outputs: Vec<(Shape, DType)>,
    run: impl Fn(&[CubeTensor]) -> Vec<CubeTensor> + Send + Sync + 'static,
) -> Vec<FloatTensor<Cube>> {
    let client = inputs[0].client.clone();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(|t| t.into_ir()).collect();
    let outputs: Vec<TensorIr> = outputs
        .into_iter()
        .map(|(shape, dtype)| TensorIr::uninit(client.create_empty_handle(), shape, dtype))
        .collect();
    let desc = CustomOpIr {
        id: id.into(),
        inputs: inputs.clone(),
        outputs: outputs.clone(),
        scalars: Vec::new(),
    };
    let op = OperationFn(move |handles: &mut HandleContainer<FusionHandle>| {
        let tensors: Vec<CubeTensor> = inputs
            .iter()
            .map(|ir| f32_contiguous(handles.get_float_tensor::<CubeBackend>(ir)))
            .collect();
        for (ir, t) in outputs.iter().zip(run(&tensors)) {
            handles.register_float_tensor::<CubeBackend>(&ir.id, t);
        }
        Ok(())
    });
    client.register(StreamId::current(), OperationIr::Custom(desc), op)
}

/// The WGSL function of the multi-tensor kernels that finds which tensor of a launch's group a
/// workgroup works on: tensor `i` owns the workgroups from `info[8 + block·i]` up to the next
/// tensor's first (`info[0]` tensors in the group). Put in place of a `//@owner` line.
pub fn owner_source(block: u32) -> String {
    format!(
        "fn owner(group: u32) -> u32 {{\n\
         \x20   let used = info[0];\n\
         \x20   var i = 0u;\n\
         \x20   loop {{\n\
         \x20       if (i + 1u >= used || group < info[8u + {block}u * (i + 1u)]) {{\n\
         \x20           break;\n\
         \x20       }}\n\
         \x20       i = i + 1u;\n\
         \x20   }}\n\
         \x20   return i;\n\
         }}"
    )
}
