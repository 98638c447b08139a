//! Choosing where the tensors live: a hardware GPU through wgpu (Vulkan, Metal, DX12), else burn's
//! Flex CPU backend. A software Vulkan adapter such as llvmpipe counts as a CPU: Flex is about 14×
//! faster than llvmpipe on the same cores.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use burn::prelude::*;

use crate::error::{Error, Result};

/// What the user asked for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A hardware GPU adapter when there is one, else the Flex CPU backend.
    #[default]
    Auto,
    /// wgpu's preferred adapter, whatever it is (a software adapter too: useful for testing shaders).
    Gpu,
    /// The Flex CPU backend.
    Cpu,
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            "cpu" | "flex" => Ok(Self::Cpu),
            other => Err(Error::Invalid(format!(
                "unknown device '{other}': use auto, gpu or cpu"
            ))),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        })
    }
}

/// Which backend a [`ComputeDevice`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// burn's wgpu backend (WGSL compiled by the runtime, so hand-written kernels launch).
    Wgpu,
    /// burn's Flex CPU backend.
    Flex,
}

impl BackendKind {
    /// The backend `device`'s tensors run on, looking through autodiff; `None` for any other
    /// backend burn has.
    pub fn of(device: &Device) -> Option<Self> {
        fn kind(device: &burn::backend::DispatchDevice) -> Option<BackendKind> {
            use burn::backend::DispatchDevice;
            match device {
                DispatchDevice::Cube(_) => Some(BackendKind::Wgpu),
                DispatchDevice::Flex(_) => Some(BackendKind::Flex),
                DispatchDevice::Autodiff(inner) => kind(inner),
                #[allow(unreachable_patterns)] // burn's features decide which others exist
                _ => None,
            }
        }
        kind(device.as_dispatch())
    }
}

/// A device chosen for the work, with a human description of the adapter.
#[derive(Debug, Clone)]
pub struct ComputeDevice {
    pub device: Device,
    pub kind: BackendKind,
    /// e.g. "wgpu: NVIDIA H100 (Vulkan, DiscreteGpu)" or "Flex CPU backend (2 threads)".
    pub description: String,
}

impl ComputeDevice {
    /// The Flex CPU backend.
    pub fn flex() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            device: Device::flex(),
            kind: BackendKind::Flex,
            description: format!("Flex CPU backend ({threads} threads)"),
        }
    }

    /// Resolve `--device`. Nothing is printed here; callers print [`ComputeDevice::description`].
    pub fn select(choice: DeviceChoice) -> Result<Self> {
        match choice {
            DeviceChoice::Cpu => Ok(Self::flex()),
            DeviceChoice::Gpu => Self::wgpu(DeviceKind::DefaultDevice),
            DeviceChoice::Auto => match hardware_adapter_kind() {
                Some(kind) => Self::wgpu(kind),
                None => Ok(Self::flex()),
            },
        }
    }

    /// Open a wgpu device of `kind` and describe its adapter. burn registers one runtime per
    /// adapter per process, so devices are opened once and handed out again after that.
    pub fn wgpu(kind: DeviceKind) -> Result<Self> {
        static OPENED: Mutex<Vec<(DeviceKind, ComputeDevice)>> = Mutex::new(Vec::new());
        let mut opened = OPENED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, device)) = opened.iter().find(|(k, _)| *k == kind) {
            return Ok(device.clone());
        }
        let device = Self::open_wgpu(kind.clone())?;
        opened.push((kind, device.clone()));
        Ok(device)
    }

    fn open_wgpu(kind: DeviceKind) -> Result<Self> {
        let (device, setup) = Device::wgpu_options()
            .device_kind(kind.clone())
            .init_with_setup()
            .map_err(|e| {
                Error::Device(format!(
                    "no usable wgpu adapter ({e}); install a Vulkan, Metal or DX12 driver \
                     (on Linux without a GPU: mesa-vulkan-drivers) or use --device cpu"
                ))
            })?;
        let info = setup.adapter.get_info();
        Ok(Self {
            device,
            kind: BackendKind::Wgpu,
            description: format!(
                "wgpu: {} ({:?}, {:?})",
                info.name, info.backend, info.device_type
            ),
        })
    }

    /// Register a wgpu device that something else already opened (the desktop app's window) with
    /// burn, so training runs on it instead of on a second device of the same adapter. The device
    /// must have been requested with the adapter's features and limits ([`burn_device_descriptor`]):
    /// burn's runtime reads them from the adapter. Register each device once and clone the result.
    pub fn shared_wgpu(setup: burn::tensor::wgpu::WgpuSetup) -> Result<Self> {
        let info = setup.adapter.get_info();
        let device = Device::wgpu_options().setup(setup).init().map_err(|e| {
            Error::Device(format!(
                "cannot use the window's wgpu device ({}) for training: {e}",
                info.name
            ))
        })?;
        Ok(Self {
            device,
            kind: BackendKind::Wgpu,
            description: format!(
                "wgpu: {} ({:?}, {:?}), shared with the window",
                info.name, info.backend, info.device_type
            ),
        })
    }

    /// The same device with autodiff on (for training).
    pub fn autodiff(&self) -> Self {
        Self {
            device: self.device.clone().autodiff(),
            ..self.clone()
        }
    }

    /// True when tensors live on the CPU backend.
    pub fn is_cpu(&self) -> bool {
        self.kind == BackendKind::Flex
    }
}

/// The first hardware adapter wgpu can see, as burn's selector: discrete before integrated before
/// virtual. `None` when there are only software adapters (llvmpipe, WARP, SwiftShader) or none.
fn hardware_adapter_kind() -> Option<DeviceKind> {
    use burn::tensor::wgpu::wgpu;
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let types: Vec<wgpu::DeviceType> = adapters.iter().map(|a| a.get_info().device_type).collect();
    let position = |t: wgpu::DeviceType| types.iter().filter(|x| **x == t).count();
    if position(wgpu::DeviceType::DiscreteGpu) > 0 {
        Some(DeviceKind::DiscreteGpu(0))
    } else if position(wgpu::DeviceType::IntegratedGpu) > 0 {
        Some(DeviceKind::IntegratedGpu(0))
    } else if position(wgpu::DeviceType::VirtualGpu) > 0 {
        Some(DeviceKind::VirtualGpu(0))
    } else {
        None
    }
}

/// The device request burn's runtime needs on `adapter` (what burn asks for when it opens a device
/// itself): every adapter feature but `MAPPABLE_PRIMARY_BUFFERS`, the adapter's limits. Another
/// wgpu user (egui's renderer) opening the device this way can share it through
/// [`ComputeDevice::shared_wgpu`].
pub fn burn_device_descriptor(
    adapter: &burn::tensor::wgpu::wgpu::Adapter,
) -> burn::tensor::wgpu::wgpu::DeviceDescriptor<'static> {
    use burn::tensor::wgpu::wgpu;
    wgpu::DeviceDescriptor {
        label: Some("flyp (shared)"),
        required_features: adapter
            .features()
            .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        required_limits: adapter.limits(),
        memory_hints: wgpu::MemoryHints::MemoryUsage,
        ..Default::default()
    }
}

/// Whether wgpu's adapter is a software rasteriser (llvmpipe, WARP, SwiftShader): Flex is faster
/// on the same cores, so "auto" trains on the CPU backend there.
pub fn is_software_adapter(adapter: &burn::tensor::wgpu::wgpu::Adapter) -> bool {
    adapter.get_info().device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu
}
