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

/// t-SNE (van der Maaten & Hinton, 2008), exact: Gaussian affinities at `perplexity` in the
/// input space, Student-t in 2-D, gradient descent with early exaggeration (12 for the first 250
/// of `iterations`), momentum and per-coordinate gains. Started from the first two principal
/// components (scaled to a small spread), so the same rows always give the same picture.
/// O(n²) per iteration: meant for the few thousand points of the app's embedding view.
pub fn tsne(rows: &[Vec<f32>], perplexity: f64, iterations: usize) -> Vec<[f64; 2]> {
    tsne_with(rows, perplexity, iterations, &mut |_| true).unwrap_or_default()
}

/// [`tsne`], telling `go_on` the iterations done after each one; `None` when it answers
/// `false` (the caller abandoned the fit).
pub fn tsne_with(
    rows: &[Vec<f32>],
    perplexity: f64,
    iterations: usize,
    go_on: &mut dyn FnMut(usize) -> bool,
) -> Option<Vec<[f64; 2]>> {
    let n = rows.len();
    if n < 3 {
        return Some(vec![[0.0, 0.0]; n]);
    }
    let p = affinities(rows, perplexity.min((n - 1) as f64 / 3.0).max(1.0));
    // Start: PCA, scaled so the first coordinate has standard deviation 1e-4.
    let mut y: Vec<[f64; 2]> = match Pca::fit(rows, 2) {
        Some(pca) => rows
            .iter()
            .map(|r| {
                let v = pca.project(r);
                [v[0], v.get(1).copied().unwrap_or(0.0)]
            })
            .collect(),
        None => (0..n).map(|i| [i as f64, 0.0]).collect(),
    };
    let sd = (y.iter().map(|v| v[0] * v[0]).sum::<f64>() / n as f64)
        .sqrt()
        .max(1e-12);
    for v in &mut y {
        v[0] *= 1e-4 / sd;
        v[1] *= 1e-4 / sd;
    }
    let rate = (n as f64 / 12.0).max(50.0);
    let mut velocity = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    let mut q = vec![0.0f64; n * n];
    for it in 0..iterations {
        if !go_on(it) {
            return None;
        }
        let exaggeration = if it < 250 { 12.0 } else { 1.0 };
        let momentum = if it < 250 { 0.5 } else { 0.8 };
        let mut z = 0.0;
        for i in 0..n {
            for j in (i + 1)..n {
                let (dx, dy) = (y[i][0] - y[j][0], y[i][1] - y[j][1]);
                let w = 1.0 / (1.0 + dx * dx + dy * dy);
                q[i * n + j] = w;
                q[j * n + i] = w;
                z += 2.0 * w;
            }
        }
        for i in 0..n {
            let mut grad = [0.0f64; 2];
            for j in 0..n {
                if i == j {
                    continue;
                }
                let w = q[i * n + j];
                let f = (exaggeration * p[i * n + j] - w / z) * w;
                grad[0] += 4.0 * f * (y[i][0] - y[j][0]);
                grad[1] += 4.0 * f * (y[i][1] - y[j][1]);
            }
            for d in 0..2 {
                let same = (grad[d] > 0.0) == (velocity[i][d] > 0.0);
                gains[i][d] = if same {
                    (gains[i][d] * 0.8).max(0.01)
                } else {
                    gains[i][d] + 0.2
                };
                velocity[i][d] = momentum * velocity[i][d] - rate * gains[i][d] * grad[d];
            }
        }
        for (v, dv) in y.iter_mut().zip(&velocity) {
            v[0] += dv[0];
            v[1] += dv[1];
        }
    }
    Some(y)
}

/// Symmetric t-SNE input affinities p_ij (summing to 1), each row's Gaussian width found by
/// bisection so that its entropy is log(perplexity).
fn affinities(rows: &[Vec<f32>], perplexity: f64) -> Vec<f64> {
    let n = rows.len();
    let mut d2 = vec![0.0f64; n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let d: f64 = rows[i]
                .iter()
                .zip(&rows[j])
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum();
            d2[i * n + j] = d;
            d2[j * n + i] = d;
        }
    }
    let target = perplexity.ln();
    let mut p = vec![0.0f64; n * n];
    for i in 0..n {
        let row = &d2[i * n..(i + 1) * n];
        let nearest = (0..n)
            .filter(|&j| j != i)
            .map(|j| row[j])
            .fold(f64::INFINITY, f64::min);
        let (mut lo, mut hi, mut beta) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            // Distances shifted by the nearest one: the same conditional p, no underflow.
            let mut sum = 0.0;
            let mut weighted = 0.0;
            for j in (0..n).filter(|&j| j != i) {
                let e = (-beta * (row[j] - nearest)).exp();
                sum += e;
                weighted += e * (row[j] - nearest);
            }
            let entropy = sum.ln() + beta * weighted / sum;
            if (entropy - target).abs() < 1e-5 {
                break;
            }
            if entropy > target {
                lo = beta;
                beta = if hi.is_finite() {
                    (beta + hi) / 2.0
                } else {
                    beta * 2.0
                };
            } else {
                hi = beta;
                beta = (beta + lo) / 2.0;
            }
        }
        let sum: f64 = (0..n)
            .filter(|&j| j != i)
            .map(|j| (-beta * (row[j] - nearest)).exp())
            .sum();
        for j in (0..n).filter(|&j| j != i) {
            p[i * n + j] = (-beta * (row[j] - nearest)).exp() / sum;
        }
    }
    let mut sym = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            sym[i * n + j] = ((p[i * n + j] + p[j * n + i]) / (2.0 * n as f64)).max(1e-12);
        }
    }
    sym
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

    #[test]
    fn tsne_keeps_clusters_apart_and_neighbours_together() {
        // Three tight clusters in 16-D, 20 points each, along different axes.
        let mut rng = crate::data::SplitMix64::new(7);
        let mut rows = Vec::new();
        for c in 0..3 {
            for _ in 0..20 {
                let mut r: Vec<f32> = (0..16)
                    .map(|_| (rng.next_f64() as f32 - 0.5) * 0.2)
                    .collect();
                r[c * 5] += 5.0;
                rows.push(r);
            }
        }
        let y = tsne(&rows, 10.0, 500);
        assert_eq!(y.len(), 60);
        assert!(y.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        // Every point's nearest 2-D neighbour is in its own cluster.
        for i in 0..60 {
            let nearest = (0..60)
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let d = |j: usize| (y[i][0] - y[j][0]).powi(2) + (y[i][1] - y[j][1]).powi(2);
                    d(a).total_cmp(&d(b))
                })
                .expect("neighbour");
            assert_eq!(nearest / 20, i / 20, "point {i}");
        }
        // Clusters are far apart compared with their own spread.
        let centre = |c: usize| {
            let pts = &y[c * 20..(c + 1) * 20];
            let m = [
                pts.iter().map(|p| p[0]).sum::<f64>() / 20.0,
                pts.iter().map(|p| p[1]).sum::<f64>() / 20.0,
            ];
            let spread = pts
                .iter()
                .map(|p| ((p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2)).sqrt())
                .fold(0.0, f64::max);
            (m, spread)
        };
        let (a, sa) = centre(0);
        let (b, sb) = centre(1);
        let gap = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        assert!(gap > sa + sb, "gap {gap} vs spreads {sa} {sb}");
    }
}
