//! The contrastive core against a float64 oracle written here from the formulas of FLYP's loss
//! (the symmetric InfoNCE over the batch, Goyal et al. 2023; the oracle itself checked by finite
//! differences): the WGSL kernels on wgpu
//! (llvmpipe in CI) and the plain-ops reference on Flex, loss and every gradient, with outputs
//! poisoned (NaN) before each kernel so unwritten elements fail. Relative error ≤ 1e-4
//! (max |ours − oracle| / max |oracle|, floored at 1e-3).

#![allow(clippy::needless_range_loop)] // index loops read like the formulas

use burn::prelude::*;
use flyp::contrastive::{self, Implementation, kernels};
use flyp::device::BackendKind;

use crate::common::devices;

const TOL: f64 = 1e-4;
const EPS: f64 = 1e-12;

/// A deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

struct Oracle {
    loss: f64,
    d_image: Vec<f64>,
    d_text: Vec<f64>,
    d_scale: f64,
}

fn normalize(x: &[f64], b: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; b * d];
    let mut inv = vec![0.0; b];
    for r in 0..b {
        let norm = x[r * d..(r + 1) * d]
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        inv[r] = 1.0 / norm.max(EPS);
        for c in 0..d {
            y[r * d + c] = x[r * d + c] * inv[r];
        }
    }
    (y, inv)
}

fn normalize_backward(y: &[f64], dy: &[f64], inv: &[f64], b: usize, d: usize) -> Vec<f64> {
    let mut dx = vec![0.0; b * d];
    for r in 0..b {
        let row = r * d..(r + 1) * d;
        let dot: f64 = y[row.clone()]
            .iter()
            .zip(&dy[row.clone()])
            .map(|(a, b)| a * b)
            .sum();
        let proj = if inv[r] >= 1.0 / EPS { 0.0 } else { dot };
        for c in row {
            dx[c] = (dy[c] - y[c] * proj) * inv[r];
        }
    }
    dx
}

/// Loss and gradients in f64, straight from the definitions.
fn oracle(image: &[f64], text: &[f64], b: usize, d: usize, t: f64, labels: &[i64]) -> Oracle {
    let (i_n, inv_i) = normalize(image, b, d);
    let (t_n, inv_t) = normalize(text, b, d);
    let s = t.exp();
    let mut logits = vec![0.0; b * b];
    for i in 0..b {
        for j in 0..b {
            logits[i * b + j] = s * (0..d).map(|k| i_n[i * d + k] * t_n[j * d + k]).sum::<f64>();
        }
    }
    let kept = |i: usize, j: usize| i == j || labels[i] != labels[j];
    let lse = |values: Vec<f64>| {
        let m = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + values.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    };
    let row: Vec<f64> = (0..b)
        .map(|i| {
            lse((0..b)
                .filter(|&j| kept(i, j))
                .map(|j| logits[i * b + j])
                .collect())
        })
        .collect();
    let col: Vec<f64> = (0..b)
        .map(|j| {
            lse((0..b)
                .filter(|&i| kept(i, j))
                .map(|i| logits[i * b + j])
                .collect())
        })
        .collect();
    let loss = (0..b)
        .map(|i| row[i] + col[i] - 2.0 * logits[i * b + i])
        .sum::<f64>()
        / (2.0 * b as f64);
    let mut g = vec![0.0; b * b];
    let mut d_scale = 0.0;
    for i in 0..b {
        for j in 0..b {
            if kept(i, j) {
                let l = logits[i * b + j];
                let delta = if i == j { 2.0 } else { 0.0 };
                g[i * b + j] = ((l - row[i]).exp() + (l - col[j]).exp() - delta) / (2.0 * b as f64);
                d_scale += g[i * b + j] * l;
            }
        }
    }
    let mut d_in = vec![0.0; b * d];
    let mut d_tn = vec![0.0; b * d];
    for i in 0..b {
        for j in 0..b {
            let gij = s * g[i * b + j];
            for k in 0..d {
                d_in[i * d + k] += gij * t_n[j * d + k];
                d_tn[j * d + k] += gij * i_n[i * d + k];
            }
        }
    }
    Oracle {
        loss,
        d_image: normalize_backward(&i_n, &d_in, &inv_i, b, d),
        d_text: normalize_backward(&t_n, &d_tn, &inv_t, b, d),
        d_scale,
    }
}

/// max |ours − oracle| / max |oracle|, the denominator floored at 1e-3 so that exactly-zero
/// oracles (B = 1 has zero gradients) compare absolutely.
fn rel_err(ours: &[f32], oracle: &[f64]) -> f64 {
    assert_eq!(ours.len(), oracle.len());
    let scale = oracle.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    let err = ours.iter().zip(oracle).fold(0.0f64, |m, (a, b)| {
        let a = *a as f64;
        if a.is_nan() {
            f64::INFINITY
        } else {
            m.max((a - b).abs())
        }
    });
    err / scale
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("read back")
}

/// One batch: features `[b, d]`, logit scale `t`, optional labels.
struct Case<'a> {
    image: &'a [f64],
    text: &'a [f64],
    b: usize,
    d: usize,
    t: f64,
    labels: Option<&'a [i64]>,
}

/// Run one case on `device` with `implementation`; returns (loss, d_image, d_text, d_scale).
fn run(
    device: &Device,
    implementation: Implementation,
    case: &Case,
) -> (f32, Vec<f32>, Vec<f32>, f32) {
    let Case {
        image,
        text,
        b,
        d,
        t,
        labels,
    } = *case;
    let device = device.clone().autodiff();
    let f = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    let image = Tensor::<2>::from_data(TensorData::new(f(image), [b, d]), &device).require_grad();
    let text = Tensor::<2>::from_data(TensorData::new(f(text), [b, d]), &device).require_grad();
    let scale =
        Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), &device).require_grad();
    let labels =
        labels.map(|l| Tensor::<1, Int>::from_data(TensorData::new(l.to_vec(), [b]), &device));
    let loss = contrastive::contrastive_loss_with(
        implementation,
        image.clone(),
        text.clone(),
        scale.clone(),
        labels,
    );
    let grads = loss.backward();
    let loss = loss.into_data().try_into_vec_as::<f32>().expect("loss")[0];
    let d_image = values(image.grad(&grads).expect("d image"));
    let d_text = values(text.grad(&grads).expect("d text"));
    let d_scale = scale
        .grad(&grads)
        .expect("d scale")
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("d scale")[0];
    (loss, d_image, d_text, d_scale)
}

fn labels_for(kind: &str, b: usize) -> Option<Vec<i64>> {
    match kind {
        "none" => None,
        "same" => Some(vec![3; b]),
        "distinct" => Some((0..b as i64).map(|i| 2 * i + 1).collect()),
        _ => Some((0..b as i64).map(|i| (i * 7) % 5).collect()), // mixed
    }
}

fn check_case(
    device: &flyp::ComputeDevice,
    implementation: Implementation,
    b: usize,
    d: usize,
    t: f64,
    kind: &str,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let (image, text) = (rng.vec(b * d), rng.vec(b * d));
    let labels = labels_for(kind, b);
    let distinct: Vec<i64> = (0..b as i64).collect();
    let want = oracle(
        &image,
        &text,
        b,
        d,
        t,
        labels.as_deref().unwrap_or(&distinct),
    );
    let case = Case {
        image: &image,
        text: &text,
        b,
        d,
        t,
        labels: labels.as_deref(),
    };
    let (loss, d_image, d_text, d_scale) = run(&device.device, implementation, &case);
    let what = format!(
        "{implementation:?} on {} b={b} d={d} t={t:.3} labels={kind}",
        device.description
    );
    let e = [
        ("loss", rel_err(&[loss], &[want.loss])),
        ("d_image", rel_err(&d_image, &want.d_image)),
        ("d_text", rel_err(&d_text, &want.d_text)),
        ("d_scale", rel_err(&[d_scale], &[want.d_scale])),
    ];
    for (name, err) in e {
        assert!(err <= TOL, "{what}: {name} relative error {err:.2e}");
    }
}

#[test]
fn oracle_gradients_match_finite_differences() {
    let (b, d, t) = (5, 6, 1.3);
    let mut rng = Rng(7);
    let (image, text) = (rng.vec(b * d), rng.vec(b * d));
    let labels = [0, 1, 0, 2, 1];
    let want = oracle(&image, &text, b, d, t, &labels);
    let h = 1e-6;
    let loss_at = |image: &[f64], text: &[f64], t: f64| oracle(image, text, b, d, t, &labels).loss;
    for k in 0..b * d {
        let (mut up, mut down) = (image.clone(), image.clone());
        up[k] += h;
        down[k] -= h;
        let fd = (loss_at(&up, &text, t) - loss_at(&down, &text, t)) / (2.0 * h);
        assert!(
            (fd - want.d_image[k]).abs() < 1e-7,
            "d_image[{k}]: fd {fd} vs {}",
            want.d_image[k]
        );
        let (mut up, mut down) = (text.clone(), text.clone());
        up[k] += h;
        down[k] -= h;
        let fd = (loss_at(&image, &up, t) - loss_at(&image, &down, t)) / (2.0 * h);
        assert!(
            (fd - want.d_text[k]).abs() < 1e-7,
            "d_text[{k}]: fd {fd} vs {}",
            want.d_text[k]
        );
    }
    let fd = (loss_at(&image, &text, t + h) - loss_at(&image, &text, t - h)) / (2.0 * h);
    assert!(
        (fd - want.d_scale).abs() < 1e-7,
        "d_scale: fd {fd} vs {}",
        want.d_scale
    );
}

#[test]
fn fused_kernels_and_reference_match_the_oracle() {
    kernels::poison_outputs(true);
    let ln100 = 100f64.ln();
    for device in devices() {
        let implementation = match device.kind {
            BackendKind::Wgpu => Implementation::Fused,
            BackendKind::Flex => Implementation::Reference,
        };
        let mut seed = 1;
        for b in [1, 2, 7, 64, 130] {
            for d in [16, 512, 768] {
                for t in [0.0, ln100] {
                    for kind in ["none", "same", "distinct", "mixed"] {
                        seed += 1;
                        check_case(&device, implementation, b, d, t, kind, seed);
                    }
                }
            }
        }
        for (d, t, kind) in [
            (16, ln100, "mixed"),
            (512, 0.0, "none"),
            (768, ln100, "distinct"),
        ] {
            check_case(&device, implementation, 1000, d, t, kind, 99);
        }
        // Widths that are not a multiple of 4: the kernels pad them and slice the gradients.
        for (b, d, kind) in [(7, 13, "mixed"), (130, 13, "none"), (64, 518, "distinct")] {
            seed += 1;
            check_case(&device, implementation, b, d, ln100, kind, seed);
        }
        // On CPU adapters the 64 × 256-tile product block: 320 = 256 + 64 leaves most lanes of
        // the second column tile past the edge (logits and, at d = 300 → 320, the gradients).
        for (b, d, kind) in [(320, 16, "mixed"), (317, 300, "none")] {
            seed += 1;
            check_case(&device, implementation, b, d, ln100, kind, seed);
        }
        eprintln!(
            "{implementation:?} on {}: 128 cases within {TOL:e}",
            device.description
        );
    }
}

#[test]
fn zero_vectors_and_huge_scales_stay_finite() {
    for device in devices() {
        for implementation in [Implementation::Reference, Implementation::Fused] {
            if implementation == Implementation::Fused && device.kind != BackendKind::Wgpu {
                continue;
            }
            let (b, d) = (6, 8);
            let mut rng = Rng(11);
            let mut image = rng.vec(b * d);
            image[..d].iter_mut().for_each(|v| *v = 0.0); // a zero image feature
            let mut text = rng.vec(b * d);
            text[2 * d..3 * d].iter_mut().for_each(|v| *v = 0.0); // a zero text feature
            // e^20 ≈ 5e8 is far past any trained CLIP (open_clip clamps at ln 100 ≈ 4.6); beyond
            // about e^25 a zero feature's true gradient (∝ s / 1e-12) exceeds f32 itself.
            for t in [0.0, 100f64.ln(), 20.0] {
                let case = Case {
                    image: &image,
                    text: &text,
                    b,
                    d,
                    t,
                    labels: Some(&[0, 1, 0, 1, 2, 2]),
                };
                let (loss, d_image, d_text, d_scale) = run(&device.device, implementation, &case);
                let finite = loss.is_finite()
                    && d_scale.is_finite()
                    && d_image.iter().chain(&d_text).all(|v| v.is_finite());
                assert!(
                    finite,
                    "{implementation:?} on {} t={t}: non-finite result (loss {loss}, d_scale {d_scale}, \
                     d_image {:?}, d_text {:?})",
                    device.description,
                    d_image.iter().find(|v| !v.is_finite()),
                    d_text.iter().find(|v| !v.is_finite()),
                );
            }
        }
    }
}

#[test]
fn classification_probabilities_and_top_k_match_the_oracle() {
    kernels::poison_outputs(true);
    for device in devices() {
        let implementation = if device.kind == BackendKind::Wgpu {
            Implementation::Fused
        } else {
            Implementation::Reference
        };
        for (n, k, d) in [(1, 2, 16), (37, 10, 512), (200, 1000, 64), (5, 3, 13)] {
            let mut rng = Rng(n as u64 * 31 + k as u64);
            let (image, classes) = (rng.vec(n * d), rng.vec(k * d));
            let t = 100f64.ln();
            let (i_n, _) = normalize(&image, n, d);
            let (c_n, _) = normalize(&classes, k, d);
            let mut want = vec![0.0; n * k];
            for r in 0..n {
                let logits: Vec<f64> = (0..k)
                    .map(|c| t.exp() * (0..d).map(|x| i_n[r * d + x] * c_n[c * d + x]).sum::<f64>())
                    .collect();
                let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
                for c in 0..k {
                    want[r * k + c] = (logits[c] - m).exp() / z;
                }
            }
            let f = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
            let dev = &device.device;
            let image_t = Tensor::<2>::from_data(TensorData::new(f(&image), [n, d]), dev);
            let classes_t = Tensor::<2>::from_data(TensorData::new(f(&classes), [k, d]), dev);
            let scale = Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), dev);
            let probs =
                contrastive::class_probabilities_with(implementation, image_t, classes_t, scale);
            let got = values(probs.clone());
            let err = rel_err(&got, &want);
            assert!(
                err <= TOL,
                "{implementation:?} on {} n={n} k={k}: probabilities relative error {err:.2e}",
                device.description
            );
            let (_, top) = contrastive::top_k(probs, 3);
            let top: Vec<i64> = top.into_data().try_into_vec_as::<i64>().expect("indices");
            for r in 0..n {
                let mut order: Vec<usize> = (0..k).collect();
                order.sort_by(|a, b| want[r * k + b].total_cmp(&want[r * k + a]));
                assert_eq!(
                    top[r * top.len() / n] as usize,
                    order[0],
                    "row {r}: top-1 differs"
                );
            }
        }
    }
}

#[test]
fn every_shader_validates_without_a_gpu() {
    use kernels::{MatmulBlock, Orientation, matmul_source};
    let mut shaders: Vec<(String, String)> = kernels::SHADERS
        .iter()
        .map(|(name, source)| (name.to_string(), source.to_string()))
        .collect();
    for (name, source) in kernels::SHADERS {
        if source.contains(kernels::MASKED_LINE) {
            let unmasked = kernels::masking_source(source, false);
            assert_ne!(unmasked, source, "{name}: masking not switched off");
            shaders.push((format!("{name} unmasked"), unmasked));
        }
    }
    for block in [MatmulBlock::GPU, MatmulBlock::CPU, MatmulBlock::CPU_LARGE] {
        for orientation in Orientation::USED {
            let source = matmul_source(block, orientation);
            assert!(
                !source.contains("{{"),
                "matmul {block:?}: a template part is left"
            );
            shaders.push((format!("matmul.wgsl {block:?} {orientation:?}"), source));
        }
    }
    for (name, source) in &shaders {
        let (name, source) = (name.as_str(), source.as_str());
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        validator
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        assert!(
            module.entry_points.iter().any(|e| e.name == "main"),
            "{name}: no `main` entry point"
        );
        assert!(source.starts_with("//"), "{name}: no header comment");
    }
}
