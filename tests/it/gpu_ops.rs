//! The towers' fused wgpu ops (`flyp::model::gpu`) against burn's own ops: forward and every
//! gradient, on llvmpipe (or whatever adapter there is), relative to the reference's largest value.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::AttentionModuleOptions;
use flyp::device::BackendKind;
use flyp::model::quick_gelu::QuickGeluBackend;

use crate::common::devices;

/// Largest |a − b| and largest |b|.
fn max_difference(a: &Tensor<3>, b: &Tensor<3>) -> (f32, f32) {
    let a = a.to_data().try_to_vec::<f32>().expect("f32");
    let b = b.to_data().try_to_vec::<f32>().expect("f32");
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
    (diff, scale)
}

/// Assert each of `ours` is within 1e-4 of the largest value of its `reference`; `case` names the
/// inputs and the reference in the message.
fn assert_close(names: &[&str], ours: &[Tensor<3>], reference: &[Tensor<3>], case: &str) {
    for (name, (ours, reference)) in names.iter().zip(ours.iter().zip(reference)) {
        let (diff, scale) = max_difference(ours, reference);
        assert!(
            diff <= 1e-4 * scale,
            "{case}, {name}: max difference {diff} at scale {scale}"
        );
    }
}

/// burn's attention on `[b, n, hidden]` rows: split into heads, attend, merge.
fn burn_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Tensor<3> {
    let [b, n, hidden] = q.dims();
    let split = |t: Tensor<3>| t.reshape([b, n, heads, hidden / heads]).swap_dims(1, 2);
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: causal,
    };
    burn::tensor::module::attention(split(q), split(k), split(v), None, None, options)
        .swap_dims(1, 2)
        .reshape([b, n, hidden])
}

/// Output, dQ, dK, dV of `sum(attention(q, k, v) ∘ upstream)` on `device` (with autodiff), as
/// plain tensors on the Flex device.
fn run(
    inputs: &[TensorData; 4],
    device: &Device,
    heads: usize,
    causal: bool,
    ours: bool,
) -> [Tensor<3>; 4] {
    let autodiff = device.clone().autodiff();
    let track = |t: &TensorData| Tensor::<3>::from_data(t.clone(), &autodiff).require_grad();
    let (q, k, v) = (track(&inputs[0]), track(&inputs[1]), track(&inputs[2]));
    let out = if ours {
        assert!(flyp::model::gpu::applies(&q, heads), "the fused op applies");
        flyp::model::gpu::attention(q.clone(), k.clone(), v.clone(), heads, causal)
    } else {
        burn_attention(q.clone(), k.clone(), v.clone(), heads, causal)
    };
    let upstream = Tensor::<3>::from_data(inputs[3].clone(), &autodiff);
    let grads = (out.clone() * upstream).sum().backward();
    let flex = Device::flex();
    let plain = |t: Tensor<3>| Tensor::<3>::from_data(t.to_data(), &flex);
    let grad = |t: &Tensor<3>| plain(Tensor::from_inner(t.grad(&grads).expect("tracked")));
    [plain(out), grad(&q), grad(&k), grad(&v)]
}

/// The wgpu device of [`devices`]; None when skipping wgpu was asked for (`devices` prints it).
fn wgpu_device() -> Option<flyp::ComputeDevice> {
    devices().into_iter().find(|d| d.kind == BackendKind::Wgpu)
}

#[test]
fn fused_attention_and_its_gradients_match_burn_attention_on_wgpu_and_flex() {
    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let flex = Device::flex();
    // (batch, seq, heads, head_dim): CLIP's heads of 64 over two workgroups of rows (77: the
    // text tower's length), and small odd sizes.
    for (b, n, heads, head_dim) in [(2, 77, 2, 64), (3, 29, 3, 16), (1, 5, 1, 4)] {
        let shape = [b, n, heads * head_dim];
        let inputs: [TensorData; 4] = std::array::from_fn(|i| {
            let spread = if i == 0 { 4.0 } else { 1.0 }; // peaked and flat rows
            Tensor::<3>::random(shape, Distribution::Normal(0.0, spread), &flex).to_data()
        });
        for causal in [false, true] {
            let ours = run(&inputs, &wgpu.device, heads, causal, true);
            for (where_, device) in [("wgpu", &wgpu.device), ("Flex", &flex)] {
                let reference = run(&inputs, device, heads, causal, false);
                assert_close(
                    &["output", "dQ", "dK", "dV"],
                    &ours,
                    &reference,
                    &format!(
                        "{b}×{n}, {heads} heads of {head_dim}, causal {causal}, against burn's \
                         attention on {where_}"
                    ),
                );
            }
        }
    }
}

/// y, dx, dγ, dβ of `sum(LayerNorm(x) ∘ upstream)` on `device` (with autodiff), γ and β random,
/// as plain tensors on the Flex device (γ and β as `[1, 1, d]`).
fn run_layer_norm(inputs: &[TensorData; 4], device: &Device, ours: bool) -> [Tensor<3>; 4] {
    use burn::module::Param;
    let autodiff = device.clone().autodiff();
    let d = inputs[0].shape()[2];
    let eps = 1e-5;
    let mut norm = burn::nn::LayerNormConfig::new(d)
        .with_epsilon(eps)
        .init(&autodiff);
    let row = |t: &TensorData| Tensor::<1>::from_data(t.clone(), &autodiff).require_grad();
    norm.gamma = Param::from_tensor(row(&inputs[1]));
    norm.beta = Some(Param::from_tensor(row(&inputs[2])));
    let x = Tensor::<3>::from_data(inputs[0].clone(), &autodiff).require_grad();
    let y = if ours {
        assert!(flyp::model::gpu::on_cube_f32(&x), "the fused op applies");
        flyp::model::gpu::layer_norm(&norm, x.clone(), eps)
    } else {
        norm.forward(x.clone())
    };
    let upstream = Tensor::<3>::from_data(inputs[3].clone(), &autodiff);
    let grads = (y.clone() * upstream).sum().backward();
    let flex = Device::flex();
    let plain = |data: TensorData| {
        let n = data.shape().iter().product::<usize>();
        let values = data.try_to_vec::<f32>().expect("f32");
        let t = Tensor::<1>::from_data(TensorData::new(values, [n]), &flex);
        if n == d {
            t.reshape([1, 1, d])
        } else {
            t.reshape(x.dims())
        }
    };
    let gamma = norm.gamma.val().grad(&grads).expect("dγ").to_data();
    let beta = norm
        .beta
        .as_ref()
        .expect("β")
        .val()
        .grad(&grads)
        .expect("dβ")
        .to_data();
    let dx = x.grad(&grads).expect("dx").to_data();
    [plain(y.to_data()), plain(dx), plain(gamma), plain(beta)]
}

#[test]
fn fused_layer_norm_and_its_gradients_match_burn_layer_norm_on_wgpu_and_flex() {
    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let flex = Device::flex();
    // (batch, seq, d): widths below, at and above one workgroup's 64, rows shifted and scaled.
    for (b, n, d) in [(2, 50, 192), (3, 7, 64), (1, 3, 37), (4, 77, 128)] {
        let x = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 3.0), &flex) + 5.0;
        let inputs: [TensorData; 4] = [
            x.to_data(),
            Tensor::<1>::random([d], Distribution::Normal(1.0, 0.5), &flex).to_data(),
            Tensor::<1>::random([d], Distribution::Normal(0.0, 0.5), &flex).to_data(),
            Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &flex).to_data(),
        ];
        let ours = run_layer_norm(&inputs, &wgpu.device, true);
        for (where_, device) in [("wgpu", &wgpu.device), ("Flex", &flex)] {
            let reference = run_layer_norm(&inputs, device, false);
            assert_close(
                &["y", "dx", "dγ", "dβ"],
                &ours,
                &reference,
                &format!("[{b}, {n}, {d}] against burn's LayerNorm on {where_}"),
            );
        }
    }
}

/// y and dx of `sum(QuickGELU(x) ∘ upstream)` on `device` (with autodiff): ours
/// (`flyp::model::quick_gelu`) or burn's ops, as plain tensors on the Flex device.
fn run_quick_gelu(inputs: &[TensorData; 2], device: &Device, ours: bool) -> [Tensor<3>; 2] {
    let autodiff = device.clone().autodiff();
    let x = Tensor::<3>::from_data(inputs[0].clone(), &autodiff).require_grad();
    let y = if ours {
        flyp::model::quick_gelu::quick_gelu(x.clone())
    } else {
        x.clone() * burn::tensor::activation::sigmoid(x.clone() * 1.702)
    };
    let upstream = Tensor::<3>::from_data(inputs[1].clone(), &autodiff);
    let grads = (y.clone() * upstream).sum().backward();
    let flex = Device::flex();
    let dx = x.grad(&grads).expect("dx").to_data();
    [
        Tensor::from_data(y.to_data(), &flex),
        Tensor::from_data(dx, &flex),
    ]
}

#[test]
fn quick_gelu_and_its_gradient_on_wgpu_match_burn_ops_on_wgpu_and_flex() {
    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let flex = Device::flex();
    for (b, n, d) in [(2, 65, 768), (1, 3, 37)] {
        let inputs: [TensorData; 2] = [
            Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 3.0), &flex).to_data(),
            Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &flex).to_data(),
        ];
        let ours = run_quick_gelu(&inputs, &wgpu.device, true);
        // Without autodiff (evaluation) the same op runs its forward alone.
        let on_wgpu = |t: &TensorData| Tensor::<3>::from_data(t.clone(), &wgpu.device);
        let plain = flyp::model::quick_gelu::quick_gelu(on_wgpu(&inputs[0]));
        // The backward's default body (burn's ops, what f16 runs), here in f32.
        let default_backward = Tensor::<3>::from_dispatch(
            <burn::backend::Dispatch as QuickGeluBackend>::quick_gelu_backward(
                on_wgpu(&inputs[0]).into_dispatch(),
                on_wgpu(&inputs[1]).into_dispatch(),
            ),
        );
        for (where_, device) in [("wgpu", &wgpu.device), ("Flex", &flex)] {
            let reference = run_quick_gelu(&inputs, device, false);
            let case = format!("[{b}, {n}, {d}] against burn's ops on {where_}");
            assert_close(&["y", "dx"], &ours, &reference, &case);
            let plain = Tensor::from_data(plain.to_data(), &flex);
            assert_close(&["y without autodiff"], &[plain], &reference[..1], &case);
            let default_backward = Tensor::from_data(default_backward.to_data(), &flex);
            let name = "dx by the default body";
            assert_close(&[name], &[default_backward], &reference[1..], &case);
        }
    }
}

/// The patch embedding's output and its weight's gradient under `sum(out ∘ upstream)`, on
/// `device` (with autodiff): ours (`flyp::model::gpu::patch_embedding`) or burn's convolution,
/// as `[b, g², d]` and `[d, c·p·p]` rows on the Flex device.
fn run_patch_embedding(inputs: &[TensorData; 3], device: &Device, ours: bool) -> [Tensor<3>; 2] {
    let autodiff = device.clone().autodiff();
    let pixels = Tensor::<4>::from_data(inputs[0].clone(), &autodiff);
    let weight = Tensor::<4>::from_data(inputs[1].clone(), &autodiff).require_grad();
    let [b, _, size, _] = pixels.dims();
    let [d, c, p, _] = weight.dims();
    let g = size / p;
    let out = if ours {
        flyp::model::gpu::patch_embedding(pixels, weight.clone())
    } else {
        burn::tensor::module::conv2d(
            pixels,
            weight.clone(),
            None,
            burn::tensor::ops::ConvOptions::new([p, p], [0, 0], [1, 1], 1),
        )
        .reshape([b, d, g * g])
        .swap_dims(1, 2)
    };
    let upstream = Tensor::<3>::from_data(inputs[2].clone(), &autodiff);
    let grads = (out.clone() * upstream).sum().backward();
    let flex = Device::flex();
    let plain = |t: Tensor<3>| Tensor::<3>::from_data(t.to_data(), &flex);
    let dw = weight.grad(&grads).expect("the weight's gradient");
    [plain(out.inner()), plain(dw.reshape([1, d, c * p * p]))]
}

#[test]
fn patch_embedding_as_a_product_matches_burns_convolution_on_wgpu_and_flex() {
    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let flex = Device::flex();
    // (batch, channels, size, patch, hidden): the tiny config's 64/8, a one-patch image, and a
    // patch that is not a power of two.
    for (b, c, size, p, d) in [(3, 3, 64, 8, 192), (2, 3, 16, 16, 32), (2, 3, 28, 7, 20)] {
        let g = size / p;
        let inputs: [TensorData; 3] = [
            Tensor::<4>::random([b, c, size, size], Distribution::Normal(0.5, 2.0), &flex)
                .to_data(),
            Tensor::<4>::random([d, c, p, p], Distribution::Normal(0.0, 0.1), &flex).to_data(),
            Tensor::<3>::random([b, g * g, d], Distribution::Normal(0.0, 1.0), &flex).to_data(),
        ];
        let ours = run_patch_embedding(&inputs, &wgpu.device, true);
        for (where_, device) in [("wgpu", &wgpu.device), ("Flex", &flex)] {
            let reference = run_patch_embedding(&inputs, device, false);
            assert_close(
                &["out", "dW"],
                &ours,
                &reference,
                &format!(
                    "[{b}, {c}, {size}, {size}] patch {p} → {d} against burn's convolution on \
                     {where_}"
                ),
            );
        }
    }
}

/// Parameters of every rank and of sizes that do not fill a workgroup, more of them than one
/// launch of the multi-tensor AdamW takes on llvmpipe (seven), and a large one.
#[derive(burn::module::Module, Debug)]
struct Bag {
    bias: burn::module::Param<Tensor<1>>,
    matrices: Vec<burn::module::Param<Tensor<2>>>,
    cube: burn::module::Param<Tensor<3>>,
    patches: burn::module::Param<Tensor<4>>,
    large: burn::module::Param<Tensor<2>>,
}

/// `n` values of spread about `spread`, the same for a `seed` everywhere (a small LCG).
fn pattern(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * spread
        })
        .collect()
}

impl Bag {
    fn new(device: &Device) -> Self {
        fn param<const D: usize>(
            dims: [usize; D],
            seed: u64,
            device: &Device,
        ) -> burn::module::Param<Tensor<D>> {
            let values = pattern(dims.iter().product(), seed, 1.0);
            // Trainable: on the autodiff device, as the model's parameters are.
            burn::module::Param::from_data(
                TensorData::new(values, dims),
                &device.clone().autodiff(),
            )
        }
        Self {
            bias: param([3], 1, device),
            matrices: [[17, 5], [1, 1], [64, 64], [300, 2], [7, 7], [2, 129]]
                .into_iter()
                .enumerate()
                .map(|(i, d)| param(d, 10 + i as u64, device))
                .collect(),
            cube: param([2, 3, 5], 2, device),
            patches: param([2, 3, 4, 5], 3, device),
            large: param([1000, 300], 4, device),
        }
    }

    /// Gradients of spread `spread` for every parameter, the same values on every device.
    fn gradients(&self, seed: u64, spread: f32, device: &Device) -> burn::optim::GradientsParams {
        struct Draw<'a> {
            grads: burn::optim::GradientsParams,
            seed: u64,
            spread: f32,
            device: &'a Device,
        }
        impl burn::module::ModuleVisitor for Draw<'_> {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let dims = param.val().dims();
                self.seed += 1;
                let values = pattern(dims.iter().product(), self.seed, self.spread);
                let g = Tensor::<D>::from_data(TensorData::new(values, dims), self.device);
                self.grads.register::<D>(param.id, g);
            }
        }
        let mut draw = Draw {
            grads: burn::optim::GradientsParams::new(),
            seed: 1000 * seed,
            spread,
            device,
        };
        self.visit(&mut draw);
        draw.grads
    }

    /// Every parameter's values, flattened, in order.
    fn values(&self) -> Vec<Vec<f32>> {
        struct Collect(Vec<Vec<f32>>);
        impl burn::module::ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                self.0
                    .push(param.val().to_data().try_to_vec::<f32>().expect("f32"));
            }
        }
        let mut c = Collect(Vec::new());
        self.visit(&mut c);
        c.0
    }
}

#[test]
fn multi_tensor_adamw_on_wgpu_matches_burns_adamw_on_wgpu_and_flex() {
    use burn::optim::{AdamWConfig, ModuleOptimizer};
    use flyp::train::adamw::adamw;
    use flyp::train::adamw_gpu;

    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let (b1, b2, eps) = (0.9, 0.98, 1e-6);
    let reference = |wd: f32| -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_1(b1)
            .with_beta_2(b2)
            .with_epsilon(eps)
            .with_weight_decay(wd)
            .build()
            .into()
    };
    // With weight decay and without; the second time with three workgroups per row of the
    // dispatch, so that each launch spans several rows (as a model of 540 M parameters would);
    // the third time with every gradient multiplied by a factor on the device (clipping's and
    // unscaling's), which the reference gets multiplied into its gradients. The factor changes
    // from step to step: AdamW's update does not see one constant factor (but for ε).
    for (wd, per_row, factors) in [
        (0.1, 65535, None),
        (0.0, 3, None),
        (0.1, 65535, Some([0.37, 3.0, 0.05, 1.0])),
    ] {
        adamw_gpu::set_workgroups_per_row(per_row);
        let mut ours = Bag::new(&wgpu.device);
        let mut ours_optim = adamw(b1, b2, eps, wd);
        let references = [("wgpu", wgpu.device.clone()), ("Flex", Device::flex())]
            .map(|(name, device)| (name, Bag::new(&device), reference(wd), device));
        let mut references = references;
        for step in 0..4u64 {
            let spread = [1.0, 1e-3, 10.0, 0.5][step as usize];
            let lr = 1e-3 * (step + 1) as f64;
            let factor = factors.map(|f: [f32; 4]| f[step as usize]);
            let grads = ours.gradients(step, spread, &wgpu.device);
            let on_device = factor.map(|f| Tensor::<1>::from_floats([f], &wgpu.device));
            ours = adamw_gpu::step(&mut ours_optim, lr, ours, grads, on_device);
            if step == 1 {
                // The state is burn's: it goes through a record and comes back.
                let bytes = ours_optim.into_bytes().expect("record");
                ours_optim = adamw(b1, b2, eps, wd).from_bytes(bytes).expect("read back");
            }
            let ours_values = ours.values();
            for (name, bag, optim, device) in references.iter_mut() {
                let grads = bag.gradients(step, spread * factor.unwrap_or(1.0), device);
                let stepped = optim.step(lr, bag.clone(), grads);
                *bag = stepped;
                for (i, (a, b)) in ours_values.iter().zip(bag.values()).enumerate() {
                    let diff = crate::common::max_abs_diff(a, &b);
                    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    assert!(
                        diff <= 1e-4 * scale,
                        "weight decay {wd}, factors {factors:?}, step {step}, parameter {i}: \
                         differs from burn's AdamW on {name} by {diff} at scale {scale}"
                    );
                }
            }
        }
    }
    adamw_gpu::set_workgroups_per_row(65535);
}

/// Every gradient's values, flattened, in the order of `bag`'s parameters.
fn gradient_values(bag: &Bag, grads: &burn::optim::GradientsParams) -> Vec<Vec<f32>> {
    struct Collect<'a>(&'a burn::optim::GradientsParams, Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let g = self.0.get::<D>(param.id).expect("a gradient");
            self.1.push(g.to_data().try_to_vec::<f32>().expect("f32"));
        }
    }
    let mut c = Collect(grads, Vec::new());
    bag.visit(&mut c);
    c.1
}

#[test]
fn multi_tensor_clipping_on_wgpu_matches_flex_and_leaves_a_norm_of_one() {
    use flyp::train::clip_grad::clip_global_norm;
    use flyp::train::grads_gpu;

    let Some(wgpu) = wgpu_device() else {
        return;
    };
    // Three tensors per launch: the ten gradients take four launches.
    grads_gpu::set_most_per_launch(3);
    let mut clipped = Vec::new();
    for device in [wgpu.device.clone(), Device::flex()] {
        let bag = Bag::new(&device);
        let mut grads = bag.gradients(7, 10.0, &device);
        clip_global_norm(&bag, &mut grads, 1.0);
        clipped.push(gradient_values(&bag, &grads));
    }
    grads_gpu::set_most_per_launch(64);
    let norm = |g: &[Vec<f32>]| {
        g.iter()
            .flatten()
            .map(|&v| v as f64 * v as f64)
            .sum::<f64>()
            .sqrt()
    };
    for (g, name) in clipped.iter().zip(["wgpu", "Flex"]) {
        let n = norm(g);
        assert!((n - 1.0).abs() < 1e-4, "norm after clipping on {name}: {n}");
    }
    for (i, (a, b)) in clipped[0].iter().zip(&clipped[1]).enumerate() {
        let diff = crate::common::max_abs_diff(a, b);
        let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            diff <= 1e-4 * scale,
            "gradient {i}: wgpu differs from Flex by {diff} at scale {scale}"
        );
    }
}

#[test]
fn a_mixed_precision_step_with_clipping_unscales_and_clips_on_wgpu_as_on_flex() {
    use flyp::train::adamw::adamw;
    use flyp::train::loss_scale::{LossScale, optimizer_step};

    let Some(wgpu) = wgpu_device() else {
        return;
    };
    let mut results = Vec::new();
    for device in [wgpu.device.clone(), Device::flex()] {
        let mut bag = Bag::new(&device);
        let mut optim = adamw(0.9, 0.999, 1e-8, 0.1);
        let mut scale = LossScale::default();
        scale.scale = 1024.0;
        for step in 0..3u64 {
            // Gradients as a loss scaled by 1024 gives them; their unscaled norms are above 1 and
            // differ from step to step, and so do the factors that clip them.
            let spread = [2.0, 0.5, 8.0][step as usize];
            let grads = bag.gradients(step, 1024.0 * spread, &device);
            let (stepped, applied) =
                optimizer_step(&mut optim, 1e-2, bag, grads, Some(&mut scale), Some(1.0));
            assert!(applied, "step {step} on {device:?}");
            bag = stepped;
        }
        // A gradient with an infinity: the step is skipped, nothing changes, the scale halves.
        let before = bag.values();
        let mut grads = bag.gradients(9, 1.0, &device);
        let inf = Tensor::<1>::from_floats([f32::INFINITY, 0.0, 0.0], &device);
        grads.register::<1>(bag.bias.id, inf);
        let (stepped, applied) =
            optimizer_step(&mut optim, 1e-2, bag, grads, Some(&mut scale), Some(1.0));
        assert!(
            !applied && scale.scale == 512.0,
            "an infinite gradient skips the step"
        );
        assert_eq!(
            stepped.values(),
            before,
            "a skipped step leaves the parameters"
        );
        results.push(stepped.values());
    }
    for (i, (a, b)) in results[0].iter().zip(&results[1]).enumerate() {
        let diff = crate::common::max_abs_diff(a, b);
        let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            diff <= 1e-4 * scale,
            "parameter {i}: wgpu differs from Flex by {diff} at scale {scale}"
        );
    }
}
