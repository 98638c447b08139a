//! Where the app trains: on the wgpu device the window draws with (registered with burn, so there
//! is no second device on the same adapter), or on burn's Flex CPU backend.

use std::sync::Arc;

use eframe::egui_wgpu;
use flyp::{ComputeDevice, DeviceChoice};

/// eframe's (or egui_kittest's) wgpu setup, changed so that the device it opens carries what
/// burn's runtime needs (the adapter's features and limits).
pub fn share_with_burn(setup: egui_wgpu::WgpuSetup) -> egui_wgpu::WgpuSetup {
    match setup {
        egui_wgpu::WgpuSetup::CreateNew(mut new) => {
            new.device_descriptor = Arc::new(flyp::device::burn_device_descriptor);
            egui_wgpu::WgpuSetup::CreateNew(new)
        }
        existing => existing,
    }
}

/// The window's wgpu device, handed to burn on the first run that trains on it.
pub struct WindowGpu {
    setup: burn::tensor::wgpu::WgpuSetup,
    /// e.g. "llvmpipe (LLVM 15.0.7, 256 bits)".
    pub name: String,
    /// A software rasteriser: "auto" trains on the CPU backend instead.
    pub software: bool,
    registered: Option<ComputeDevice>,
}

impl WindowGpu {
    pub fn new(render_state: &egui_wgpu::RenderState) -> Self {
        let adapter = render_state.adapter.clone();
        Self {
            name: adapter.get_info().name,
            software: flyp::device::is_software_adapter(&adapter),
            setup: burn::tensor::wgpu::WgpuSetup {
                instance: render_state.instance.clone(),
                backend: adapter.get_info().backend,
                adapter,
                device: render_state.device.clone(),
                queue: render_state.queue.clone(),
            },
            registered: None,
        }
    }

    /// The burn device on the window's wgpu device (registered once).
    fn device(&mut self) -> flyp::Result<ComputeDevice> {
        if let Some(device) = &self.registered {
            return Ok(device.clone());
        }
        let device = ComputeDevice::shared_wgpu(self.setup.clone())?;
        self.registered = Some(device.clone());
        Ok(device)
    }
}

/// What "Compute" in the settings resolves to: `Gpu` is the window's device, `Auto` that device
/// unless it is a software rasteriser (then the CPU backend), `Cpu` the Flex backend.
pub fn resolve(choice: DeviceChoice, gpu: Option<&mut WindowGpu>) -> flyp::Result<ComputeDevice> {
    match (choice, gpu) {
        (DeviceChoice::Cpu, _) => Ok(ComputeDevice::flex()),
        (DeviceChoice::Auto, Some(gpu)) if !gpu.software => gpu.device(),
        (DeviceChoice::Auto, _) => Ok(ComputeDevice::flex()),
        (DeviceChoice::Gpu, Some(gpu)) => gpu.device(),
        (DeviceChoice::Gpu, None) => Err(flyp::Error::Device(
            "the window is not drawn with wgpu, so there is no GPU device to train on: choose CPU"
                .into(),
        )),
    }
}

/// The label of each choice in the settings.
pub fn label(choice: DeviceChoice, gpu: Option<&WindowGpu>) -> String {
    match (choice, gpu) {
        (DeviceChoice::Cpu, _) => "CPU (Flex)".into(),
        (DeviceChoice::Gpu, Some(gpu)) => format!("GPU: {}", gpu.name),
        (DeviceChoice::Gpu, None) => "GPU (none)".into(),
        (DeviceChoice::Auto, Some(gpu)) if !gpu.software => format!("Auto (GPU: {})", gpu.name),
        (DeviceChoice::Auto, _) => "Auto (CPU: no hardware GPU)".into(),
    }
}
