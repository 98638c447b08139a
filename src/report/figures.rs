//! The demo report's figures, from plain numbers: ID-vs-OOD scatter with WiSE-FT curves,
//! accuracy vs α, per-epoch accuracy, and image + class-prompt embeddings in one projection.

use super::chart::{Figure, Marker, PALETTE, Panel, Series};

/// One method's result: top-1 (0–1) on the ID test set and the OOD set.
#[derive(Debug, Clone)]
pub struct Point {
    pub method: String,
    pub id: f64,
    pub ood: f64,
}

/// A WiSE-FT curve: (α, ID top-1, OOD top-1) for each α.
#[derive(Debug, Clone)]
pub struct Curve {
    pub method: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// A colour per method name (the method's own, [`crate::methods::Method::colour`]), stable across
/// figures; "… + WiSE-FT" rows take their method's.
pub fn method_colour(method: &str) -> &'static str {
    let base = method.split(" +").next().unwrap_or(method);
    crate::methods::by_name(base).map_or(PALETTE[8], |m| PALETTE[m.colour() % PALETTE.len()])
}

fn method_marker(method: &str) -> Marker {
    if method.contains("WiSE") {
        Marker::Square
    } else if method == "zeroshot" {
        Marker::Star
    } else {
        Marker::Circle
    }
}

fn percent(v: f64) -> f64 {
    100.0 * v
}

/// ID (x) vs OOD (y) top-1 of every method, the y = x line, and each WiSE-FT curve from α = 0
/// (the zero-shot model) to α = 1 (the fine-tuned one).
pub fn id_vs_ood(
    points: &[Point],
    curves: &[Curve],
    id_name: &str,
    ood_name: &str,
    subtitle: &str,
) -> Figure {
    let mut panel = Panel::new(
        "Robustness: ID vs OOD accuracy",
        format!("ID accuracy: {id_name} top-1 (%)"),
        format!("OOD accuracy: {ood_name} top-1 (%)"),
    );
    let all: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.id, p.ood])
        .chain(
            curves
                .iter()
                .flat_map(|c| c.points.iter().flat_map(|p| [p.1, p.2])),
        )
        .filter(|v| v.is_finite())
        .map(percent)
        .collect();
    let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        ((lo - 5.0).max(0.0), (hi + 5.0).min(100.0))
    } else {
        (0.0, 100.0)
    };
    panel.x_range = Some((lo, hi));
    panel.y_range = Some((lo, hi));
    panel.series.push(
        Series::line(
            "y = x (no loss under shift)",
            "#999999",
            vec![(lo, lo), (hi, hi)],
        )
        .dashed(),
    );
    for c in curves {
        panel.series.push(
            Series::line(
                format!("{} WiSE-FT, α = 0…1", c.method),
                method_colour(&c.method),
                c.points
                    .iter()
                    .map(|p| (percent(p.1), percent(p.2)))
                    .collect(),
            )
            .with_marker(Marker::Circle, 2.5)
            .with_opacity(0.55),
        );
    }
    for p in points {
        panel.series.push(
            Series::points(
                p.method.clone(),
                method_colour(&p.method),
                method_marker(&p.method),
                vec![(percent(p.id), percent(p.ood))],
            )
            .with_marker(method_marker(&p.method), 6.0),
        );
    }
    let mut figure = Figure::new("ID vs OOD accuracy of each method", subtitle, vec![panel]);
    figure.panel_width = 620.0;
    figure.panel_height = 520.0;
    figure
}

/// Top-1 vs WiSE-FT α, one panel for the ID set and one for the OOD set.
pub fn accuracy_vs_alpha(
    curves: &[Curve],
    id_name: &str,
    ood_name: &str,
    subtitle: &str,
) -> Figure {
    let panel = |title: String, pick: fn(&(f64, f64, f64)) -> f64| {
        let mut p = Panel::new(
            title,
            "α (0 = zero-shot weights, 1 = fine-tuned)",
            "top-1 (%)",
        );
        p.x_range = Some((-0.03, 1.03));
        for c in curves {
            p.series.push(
                Series::line(
                    c.method.clone(),
                    method_colour(&c.method),
                    c.points.iter().map(|q| (q.0, percent(pick(q)))).collect(),
                )
                .with_marker(Marker::Circle, 3.0),
            );
        }
        p
    };
    Figure::new(
        "WiSE-FT: accuracy along the weight interpolation",
        subtitle,
        vec![
            panel(format!("ID ({id_name})"), |q| q.1),
            panel(format!("OOD ({ood_name})"), |q| q.2),
        ],
    )
}

/// One run's per-epoch accuracy: (epoch, ID top-1, OOD top-1).
#[derive(Debug, Clone)]
pub struct EpochCurve {
    pub method: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// Per-epoch ID and OOD top-1 of each fine-tuning run, with the zero-shot level as a dashed line.
pub fn epoch_curves(
    runs: &[EpochCurve],
    zero_shot: Option<(f64, f64)>,
    id_name: &str,
    ood_name: &str,
    subtitle: &str,
) -> Figure {
    let epochs = runs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let panel = |title: String, pick: fn(&(f64, f64, f64)) -> f64, level: Option<f64>| {
        let mut p = Panel::new(title, "epoch", "top-1 (%)");
        p.x_range = Some((0.0, epochs + 0.3));
        if let Some(level) = level {
            p.series.push(
                Series::line(
                    "zeroshot",
                    method_colour("zeroshot"),
                    vec![(0.0, percent(level)), (epochs + 0.3, percent(level))],
                )
                .dashed(),
            );
        }
        for r in runs {
            p.series.push(
                Series::line(
                    r.method.clone(),
                    method_colour(&r.method),
                    r.points.iter().map(|q| (q.0, percent(pick(q)))).collect(),
                )
                .with_marker(Marker::Circle, 3.0),
            );
        }
        p
    };
    Figure::new(
        "Accuracy during fine-tuning",
        subtitle,
        vec![
            panel(format!("ID ({id_name})"), |q| q.1, zero_shot.map(|z| z.0)),
            panel(format!("OOD ({ood_name})"), |q| q.2, zero_shot.map(|z| z.1)),
        ],
    )
}

/// Points of one model in the shared projection: images (class, ID or OOD) and class prompts.
#[derive(Debug, Clone)]
pub struct EmbeddingView {
    pub title: String,
    /// (x, y, class, is_ood)
    pub images: Vec<(f64, f64, usize, bool)>,
    /// (x, y) per class, in class order.
    pub prompts: Vec<(f64, f64)>,
}

/// Image embeddings (colour = class; filled circle = ID, ring = OOD) and class-prompt embeddings
/// (stars, labelled) of several models, side by side in one fitted projection.
pub fn embeddings(
    views: &[EmbeddingView],
    class_names: &[String],
    id_name: &str,
    ood_name: &str,
    subtitle: &str,
) -> Figure {
    // One range for every panel: the projection is shared, so are the axes.
    let all: Vec<(f64, f64)> = views
        .iter()
        .flat_map(|v| {
            v.images
                .iter()
                .map(|p| (p.0, p.1))
                .chain(v.prompts.iter().copied())
        })
        .collect();
    let range = |pick: fn(&(f64, f64)) -> f64| {
        let lo = all.iter().map(pick).fold(f64::INFINITY, f64::min);
        let hi = all.iter().map(pick).fold(f64::NEG_INFINITY, f64::max);
        let pad = (hi - lo).max(1e-6) * 0.08;
        (lo - pad, hi + pad)
    };
    let (xr, yr) = (range(|p| p.0), range(|p| p.1));
    let panels = views
        .iter()
        .map(|v| {
            let mut p = Panel::new(v.title.clone(), "component 1", "component 2");
            p.ticks = false;
            p.x_range = Some(xr);
            p.y_range = Some(yr);
            for (class, name) in class_names.iter().enumerate() {
                let colour = PALETTE[class % PALETTE.len()];
                for (ood, marker) in [(false, Marker::Circle), (true, Marker::Ring)] {
                    let pts: Vec<(f64, f64)> = v
                        .images
                        .iter()
                        .filter(|q| q.2 == class && q.3 == ood)
                        .map(|q| (q.0, q.1))
                        .collect();
                    // The legend names each class once (by its filled ID marker).
                    let legend = if ood { String::new() } else { name.clone() };
                    p.series.push(
                        Series::points(legend, colour, marker, pts)
                            .with_marker(marker, 3.0)
                            .with_opacity(0.75),
                    );
                }
            }
            // Legend-only entries for the two image sets.
            for (marker, set) in [(Marker::Circle, id_name), (Marker::Ring, ood_name)] {
                p.series.push(
                    Series::points(format!("{set} images"), "#555555", marker, Vec::new())
                        .with_marker(marker, 4.0),
                );
            }
            for (class, (&(x, y), name)) in v.prompts.iter().zip(class_names).enumerate() {
                p.series.push(
                    Series::points(
                        "",
                        PALETTE[class % PALETTE.len()],
                        Marker::Star,
                        vec![(x, y)],
                    )
                    .with_marker(Marker::Star, 6.0)
                    .with_labels(vec![name.clone()]),
                );
            }
            p
        })
        .collect();
    let mut figure = Figure::new(
        "Image and class-prompt embeddings in one PCA projection (stars: class prompts)",
        subtitle,
        panels,
    );
    figure.panel_width = 440.0;
    figure.panel_height = 440.0;
    figure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_has_a_point_per_method_and_a_curve_per_run() {
        let points = vec![
            Point {
                method: "zeroshot".into(),
                id: 0.5,
                ood: 0.45,
            },
            Point {
                method: "finetune".into(),
                id: 0.8,
                ood: 0.4,
            },
        ];
        let curves = vec![Curve {
            method: "finetune".into(),
            points: vec![(0.0, 0.5, 0.45), (1.0, 0.8, 0.4)],
        }];
        let svg = id_vs_ood(&points, &curves, "twemoji", "noto", "seed 0").to_svg();
        assert!(svg.contains("finetune WiSE-FT"));
        assert!(svg.contains("OOD accuracy: noto top-1 (%)"));
        // y = x and the WiSE curve are lines.
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
