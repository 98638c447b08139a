//! Shared helpers: fixture paths, the reference file, devices.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flyp::ComputeDevice;
use flyp::device::BackendKind;
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What transformers computed (tests/fixtures/make_fixtures.py).
#[derive(Deserialize)]
pub struct Reference {
    pub image_size: usize,
    pub images: Vec<String>,
    pub exact_resolution: Vec<String>,
    pub texts: Vec<String>,
    pub input_ids: Vec<Vec<u32>>,
    pub pixel_values: Vec<Vec<f32>>,
    pub image_embeds: Vec<Vec<f32>>,
    pub text_embeds: Vec<Vec<f32>>,
    pub logit_scale: f32,
}

#[derive(Deserialize)]
struct ReferenceFile {
    models: std::collections::BTreeMap<String, Reference>,
}

pub fn reference(model: &str) -> &'static Reference {
    static FILE: OnceLock<ReferenceFile> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let text =
            std::fs::read_to_string(fixtures().join("reference.json")).expect("reference.json");
        serde_json::from_str(&text).expect("parse reference.json")
    });
    &file.models[model]
}

/// The Flex device and, when an adapter exists (or skipping is not allowed), the wgpu one.
pub fn devices() -> Vec<ComputeDevice> {
    let mut devices = vec![ComputeDevice::flex()];
    match ComputeDevice::wgpu(burn::prelude::DeviceKind::DefaultDevice) {
        Ok(d) => devices.push(d),
        Err(e) if std::env::var("FLYP_SKIP_WGPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPING wgpu (FLYP_SKIP_WGPU=1): {e}");
        }
        Err(e) => {
            panic!("no wgpu adapter ({e}); install mesa-vulkan-drivers or set FLYP_SKIP_WGPU=1")
        }
    }
    assert_eq!(devices[0].kind, BackendKind::Flex);
    devices
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A fresh empty folder under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flyp-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
