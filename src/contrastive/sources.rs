//! The WGSL text of the contrastive core's kernels: the fixed shaders of `shaders/`, the masking
//! variants, and the matrix product's template filled in per register block and operand
//! orientation. [`super::kernels`] launches them; tests validate every variant with naga.

use burn::backend::wgpu::CubeTensor;

/// The line of the masking shaders that [`masking_source`] rewrites.
pub const MASKED_LINE: &str = "const MASKED: bool = true;";

/// A masking shader's text with class-collision masking on or off. A constant, so the compiler
/// drops the label reads; on SIMD rasterisers a run-time flag would not save them (both sides of
/// an `if` run there).
pub fn masking_source(source: &str, masked: bool) -> String {
    debug_assert!(source.contains(MASKED_LINE));
    if masked {
        source.to_string()
    } else {
        source.replace(MASKED_LINE, "const MASKED: bool = false;")
    }
}

/// The matrix product's register block: `rows` × `4·quads` elements of C per invocation, in a
/// `wx` × `wy` workgroup (see `shaders/matmul.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatmulBlock {
    pub rows: u32,
    pub quads: u32,
    pub wx: u32,
    pub wy: u32,
}

impl MatmulBlock {
    /// GPUs: 8 × 8 per invocation, a 64 × 64 tile per workgroup.
    pub const GPU: Self = Self {
        rows: 8,
        quads: 2,
        wx: 8,
        wy: 8,
    };
    /// CPU rasterisers (llvmpipe, SwiftShader, WARP): 32 × 16 per invocation, a 64 × 128 tile.
    pub const CPU: Self = Self {
        rows: 32,
        quads: 4,
        wx: 8,
        wy: 2,
    };
    /// CPU rasterisers on products of at least 64 × 256 (rows a multiple of 64): 64 × 32 per
    /// invocation, a 64 × 256 tile. Half the loads per multiply-add of [`Self::CPU`]; its lanes
    /// past a narrower C would idle.
    pub const CPU_LARGE: Self = Self {
        rows: 64,
        quads: 8,
        wx: 8,
        wy: 1,
    };

    /// The block for a product C `[mp, np]` on `tensor`'s device (cubecl reports no physical
    /// card for a CPU adapter). Each invocation's block lies wholly inside C or wholly past its
    /// edge: C is padded to multiples of 32, every block's columns and the GPU and 32-row
    /// blocks' rows divide 32, and the 64-row block is chosen only where the rows are a
    /// multiple of 64.
    pub(crate) fn for_product(tensor: &CubeTensor, mp: usize, np: usize) -> Self {
        if tensor.client.properties().identity.physical.is_some() {
            Self::GPU
        } else if mp.is_multiple_of(64) && np >= 256 {
            Self::CPU_LARGE
        } else {
            Self::CPU
        }
    }

    pub(crate) fn tile_rows(self) -> u32 {
        self.wy * self.rows
    }

    pub(crate) fn tile_cols(self) -> u32 {
        self.wx * 4 * self.quads
    }
}

/// How the matrix product reads its operands (see `shaders/matmul.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orientation {
    /// A stored `[kp, mp]` instead of `[mp, kp]`.
    pub a_transposed: bool,
    /// B stored `[np, kp]` instead of `[kp, np]`.
    pub b_transposed: bool,
}

impl Orientation {
    /// Every orientation the core uses: logits (B transposed), dIn (plain), dTn (A transposed).
    pub const USED: [Self; 3] = [Self::AB_T, Self::AB, Self::A_T_B];
    pub(crate) const AB: Self = Self {
        a_transposed: false,
        b_transposed: false,
    };
    pub(crate) const AB_T: Self = Self {
        a_transposed: false,
        b_transposed: true,
    };
    pub(crate) const A_T_B: Self = Self {
        a_transposed: true,
        b_transposed: false,
    };
}

/// `shaders/matmul.wgsl` with its template parts filled in for `block` and `orientation`.
pub fn matmul_source(block: MatmulBlock, orientation: Orientation) -> String {
    use std::fmt::Write;
    const LANE: [&str; 4] = ["x", "y", "z", "w"];
    let (rows, quads) = (block.rows, block.quads);
    let mut init = String::new();
    let mut step = String::new();
    let mut store = String::new();
    for i in 0..rows {
        for j in 0..quads {
            let _ = writeln!(init, "    var c{i}_{j} = vec4<f32>(0.0);");
            let _ = writeln!(store, "    c[(m0 + {i}u) * n4 + nq + {j}u] = c{i}_{j} * s;");
        }
    }
    // b{kk}_{j}: B row k + kk at this block's columns 4(nq + j) .. 4(nq + j) + 3.
    if orientation.b_transposed {
        // B(k.., n) = b[n, k..]: one vec4 per column holds its rows k..k+3.
        for j in 0..quads {
            for cc in 0..4 {
                let _ = writeln!(
                    step,
                    "        let u{j}_{cc} = b[(4u * (nq + {j}u) + {cc}u) * k4 + kq];"
                );
            }
            for (kk, lane) in LANE.iter().enumerate() {
                let _ = writeln!(
                    step,
                    "        let b{kk}_{j} = vec4<f32>(u{j}_0.{lane}, u{j}_1.{lane}, u{j}_2.{lane}, \
                     u{j}_3.{lane});"
                );
            }
        }
    } else {
        for kk in 0..4 {
            for j in 0..quads {
                let _ = writeln!(
                    step,
                    "        let b{kk}_{j} = b[(k + {kk}u) * n4 + nq + {j}u];"
                );
            }
        }
    }
    // a{i}: A row m0 + i at columns k..k+3, then that row's multiply-adds. Plain A is loaded row
    // by row next to its uses, transposed A (four rows per vec4) four rows at a time next to
    // theirs: on llvmpipe both measured faster than all loads first (fewer values live at once).
    for i in 0..rows {
        if orientation.a_transposed && i % 4 == 0 {
            // A(m, k + kk) = a[k + kk, m]: rows m0 + i .. m0 + i + 3 at columns k..k+3.
            let q = i / 4;
            for kk in 0..4 {
                let _ = writeln!(
                    step,
                    "        let t{kk}_{q} = a[(k + {kk}u) * m4 + mq + {q}u];"
                );
            }
        }
        if orientation.a_transposed {
            let (q, lane) = (i / 4, LANE[(i % 4) as usize]);
            let _ = writeln!(
                step,
                "        let a{i} = vec4<f32>(t0_{q}.{lane}, t1_{q}.{lane}, t2_{q}.{lane}, \
                 t3_{q}.{lane});"
            );
        } else {
            let _ = writeln!(step, "        let a{i} = a[(m0 + {i}u) * k4 + kq];");
        }
        for j in 0..quads {
            let _ = writeln!(
                step,
                "        c{i}_{j} += a{i}.x * b0_{j} + a{i}.y * b1_{j} + a{i}.z * b2_{j} \
                 + a{i}.w * b3_{j};"
            );
        }
    }
    include_str!("../../shaders/matmul.wgsl")
        .replace("{{ wx }}", &block.wx.to_string())
        .replace("{{ wy }}", &block.wy.to_string())
        .replace("{{ tile_rows }}", &block.tile_rows().to_string())
        .replace("{{ tile_quads }}", &(block.wx * quads).to_string())
        .replace("{{ rows }}", &rows.to_string())
        .replace("{{ quads }}", &quads.to_string())
        .replace("{{ init }}\n", &init)
        .replace("{{ step }}\n", &step)
        .replace("{{ store }}\n", &store)
}

/// Every fixed shader of the core, for validation without a GPU (the matrix product's variants
/// come from [`matmul_source`]).
pub const SHADERS: [(&str, &str); 8] = [
    (
        "normalize.wgsl",
        include_str!("../../shaders/normalize.wgsl"),
    ),
    ("lse_rows.wgsl", include_str!("../../shaders/lse_rows.wgsl")),
    ("lse_cols.wgsl", include_str!("../../shaders/lse_cols.wgsl")),
    ("loss.wgsl", include_str!("../../shaders/loss.wgsl")),
    (
        "softmax_grad.wgsl",
        include_str!("../../shaders/softmax_grad.wgsl"),
    ),
    (
        "reduce_sum.wgsl",
        include_str!("../../shaders/reduce_sum.wgsl"),
    ),
    (
        "normalize_backward.wgsl",
        include_str!("../../shaders/normalize_backward.wgsl"),
    ),
    (
        "softmax_rows.wgsl",
        include_str!("../../shaders/softmax_rows.wgsl"),
    ),
];
