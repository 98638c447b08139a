//! 2-D projections of embeddings: PCA fitted once (on the zero-shot model's image and prompt
//! embeddings) and reused for every later model, so that movement in the picture is movement of
//! the embeddings, not of the projection.

/// A fitted linear projection: `project(x) = (x − mean) · componentsᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// `[k][d]`, orthonormal rows, by decreasing variance.
    pub components: Vec<Vec<f64>>,
    /// The variance along each component.
    pub variances: Vec<f64>,
}

impl Pca {
    /// The top `k` principal directions of `rows` (power iteration with deflation on the
    /// covariance, from a fixed start: deterministic). `None` when there are no rows or they have
    /// different lengths.
    pub fn fit(rows: &[Vec<f32>], k: usize) -> Option<Self> {
        let d = rows.first()?.len();
        if d == 0 || rows.iter().any(|r| r.len() != d) {
            return None;
        }
        let n = rows.len() as f64;
        let mut mean = vec![0.0; d];
        for r in rows {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / n;
            }
        }
        let mut cov = vec![vec![0.0; d]; d];
        for r in rows {
            let c: Vec<f64> = r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
            for (row, ci) in cov.iter_mut().zip(&c) {
                row.iter_mut().zip(&c).for_each(|(x, cj)| *x += ci * cj / n);
            }
        }
        let mut components: Vec<Vec<f64>> = Vec::new();
        let mut variances = Vec::new();
        for c in 0..k.min(d) {
            let mut v: Vec<f64> = (0..d)
                .map(|i| 1.0 + ((i * 7 + c * 13) % 11) as f64 / 10.0)
                .collect();
            let mut lambda = 0.0;
            for _ in 0..500 {
                let mut w: Vec<f64> = cov.iter().map(|row| dot(row, &v)).collect();
                for p in &components {
                    let along = dot(&w, p);
                    w.iter_mut().zip(p).for_each(|(x, q)| *x -= along * q);
                }
                let norm = dot(&w, &w).sqrt();
                if norm < 1e-300 {
                    break;
                }
                w.iter_mut().for_each(|x| *x /= norm);
                let delta: f64 = w.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
                v = w;
                lambda = norm;
                if delta < 1e-12 {
                    break;
                }
            }
            // A sign convention, so that refits of similar data point the same way.
            if v.iter().sum::<f64>() < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            components.push(v);
            variances.push(lambda);
        }
        Some(Self {
            mean,
            components,
            variances,
        })
    }

    /// The coordinates of `row` along the components.
    pub fn project(&self, row: &[f32]) -> Vec<f64> {
        self.components
            .iter()
            .map(|c| {
                c.iter()
                    .zip(row.iter().zip(&self.mean))
                    .map(|(w, (&v, m))| w * (v as f64 - m))
                    .sum()
            })
            .collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `rows` with each modality's mean removed (the "center each modality" view that hides the
/// modality gap): returns the rows minus the mean of their group.
pub fn center_groups(rows: &[Vec<f32>], group: &[usize]) -> Vec<Vec<f32>> {
    let groups = group.iter().copied().max().map_or(0, |g| g + 1);
    let d = rows.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0.0f64; d]; groups];
    let mut counts = vec![0usize; groups];
    for (r, &g) in rows.iter().zip(group) {
        counts[g] += 1;
        sums[g].iter_mut().zip(r).for_each(|(s, &v)| *s += v as f64);
    }
    rows.iter()
        .zip(group)
        .map(|(r, &g)| {
            r.iter()
                .zip(&sums[g])
                .map(|(&v, s)| (v as f64 - s / counts[g] as f64) as f32)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_planted_directions() {
        // Points spread 10× along (1,1,0)/√2 and 3× along (0,0,1), 0.1 elsewhere.
        let mut rows = Vec::new();
        for i in 0..200 {
            let a = ((i * 37 % 101) as f32 / 50.0 - 1.0) * 10.0;
            let b = ((i * 53 % 97) as f32 / 48.0 - 1.0) * 3.0;
            let c = ((i * 71 % 89) as f32 / 44.0 - 1.0) * 0.1;
            let s = std::f32::consts::FRAC_1_SQRT_2;
            rows.push(vec![a * s + c * s + 5.0, a * s - c * s, b, 0.0]);
        }
        let pca = Pca::fit(&rows, 2).expect("rows");
        let first = &pca.components[0];
        assert!(
            (first[0].abs() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-3
                && (first[1].abs() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-3,
            "{first:?}"
        );
        assert!(
            (pca.components[1][2].abs() - 1.0).abs() < 1e-3,
            "{:?}",
            pca.components[1]
        );
        assert!(pca.variances[0] > 8.0 * pca.variances[1]);
        // Projection of the mean is the origin.
        let mean: Vec<f32> = pca.mean.iter().map(|&m| m as f32).collect();
        assert!(pca.project(&mean).iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn centering_removes_each_group_mean() {
        let rows = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![10.0, 0.0]];
        let c = center_groups(&rows, &[0, 0, 1]);
        assert_eq!(c, vec![vec![-1.0, -1.0], vec![1.0, 1.0], vec![0.0, 0.0]]);
    }
}
