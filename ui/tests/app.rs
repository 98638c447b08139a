//! The app drawn offscreen by egui_kittest on wgpu (llvmpipe in CI), through eframe's creation
//! path, so the window's renderer and adapter hand-over are exercised.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use flyp_studio::app::Studio;

#[test]
fn window_opens_on_wgpu_and_names_its_adapter() {
    let mut harness = Harness::builder().wgpu().build_eframe(|cc| Studio::new(cc));
    harness.run();
    harness.get_by_label("flyp-studio");
    let adapter = harness.state().adapter.clone();
    let adapter = adapter.expect("eframe reported no wgpu adapter");
    assert!(!adapter.is_empty());
    harness.get_by_label(&format!("Drawing on: {adapter}"));
    assert!(
        harness
            .query_by_label("Drawing on: (no wgpu adapter reported)")
            .is_none()
    );
}
