//! A small chart writer for the report pictures: panels of lines and markers with axes, ticks,
//! units, a title and a legend, as SVG text; [`super::svg_to_png`] rasterises the same text.

use std::fmt::Write;

/// A colour as `#rrggbb`.
pub type Colour = &'static str;

/// Ten distinguishable colours (Tableau 10), for classes and methods.
pub const PALETTE: [Colour; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// How a series' points are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marker {
    None,
    Circle,
    /// Open circle.
    Ring,
    Triangle,
    Square,
    Star,
}

/// One set of points: joined by a line, marked, or both.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the legend; empty = not in the legend.
    pub name: String,
    pub colour: Colour,
    pub points: Vec<(f64, f64)>,
    pub line: bool,
    pub dashed: bool,
    pub marker: Marker,
    pub marker_size: f64,
    /// A text drawn beside each point (same length as `points`), e.g. class names on stars.
    pub labels: Vec<String>,
    pub opacity: f64,
}

impl Series {
    pub fn line(name: impl Into<String>, colour: Colour, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            colour,
            points,
            line: true,
            dashed: false,
            marker: Marker::None,
            marker_size: 4.0,
            labels: Vec::new(),
            opacity: 1.0,
        }
    }

    pub fn points(
        name: impl Into<String>,
        colour: Colour,
        marker: Marker,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            line: false,
            marker,
            ..Self::line(name, colour, points)
        }
    }

    pub fn with_marker(mut self, marker: Marker, size: f64) -> Self {
        self.marker = marker;
        self.marker_size = size;
        self
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = labels;
        self
    }

    pub fn with_opacity(mut self, opacity: f64) -> Self {
        self.opacity = opacity;
        self
    }
}

/// One set of axes.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Axis ranges; `None` = fitted to the data with a margin.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Draw tick labels (off for projections, whose coordinates mean nothing).
    pub ticks: bool,
    pub series: Vec<Series>,
}

impl Panel {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_range: None,
            y_range: None,
            ticks: true,
            series: Vec::new(),
        }
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let fit = |values: Vec<f64>| {
            let (lo, hi) = values
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            if !lo.is_finite() {
                return (0.0, 1.0);
            }
            let pad = ((hi - lo) * 0.06).max(1e-9);
            (lo - pad, hi + pad)
        };
        (
            self.x_range
                .unwrap_or_else(|| fit(all().map(|p| p.0).collect())),
            self.y_range
                .unwrap_or_else(|| fit(all().map(|p| p.1).collect())),
        )
    }
}

/// Panels side by side under one title, with one legend below them.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    /// A smaller line under the title (seed, data, model).
    pub subtitle: String,
    pub panels: Vec<Panel>,
    pub panel_width: f64,
    pub panel_height: f64,
}

const FONT: &str = "Ubuntu, sans-serif";
const MARGIN_LEFT: f64 = 62.0;
const MARGIN_RIGHT: f64 = 18.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 48.0;
const HEADER: f64 = 56.0;
const LEGEND_ROW: f64 = 20.0;

impl Figure {
    pub fn new(title: impl Into<String>, subtitle: impl Into<String>, panels: Vec<Panel>) -> Self {
        Self {
            title: title.into(),
            subtitle: subtitle.into(),
            panels,
            panel_width: 460.0,
            panel_height: 380.0,
        }
    }

    /// Legend entries: each distinct (name, colour, marker, line, dashed) once, in first-seen order.
    fn legend(&self) -> Vec<&Series> {
        let mut seen: Vec<&Series> = Vec::new();
        for s in self.panels.iter().flat_map(|p| p.series.iter()) {
            if !s.name.is_empty() && !seen.iter().any(|t| t.name == s.name) {
                seen.push(s);
            }
        }
        seen
    }

    fn legend_rows(&self, width: f64) -> Vec<Vec<&Series>> {
        let mut rows: Vec<Vec<&Series>> = vec![Vec::new()];
        let mut x = 0.0;
        for s in self.legend() {
            let w = legend_entry_width(&s.name);
            if x + w > width - 40.0 && !rows.last().is_some_and(Vec::is_empty) {
                rows.push(Vec::new());
                x = 0.0;
            }
            if let Some(row) = rows.last_mut() {
                row.push(s);
            }
            x += w;
        }
        rows.retain(|r| !r.is_empty());
        rows
    }

    /// Total size in pixels (width, height).
    pub fn size(&self) -> (f64, f64) {
        let width = self.panels.len().max(1) as f64 * self.panel_width;
        let legend = self.legend_rows(width).len() as f64 * LEGEND_ROW + 12.0;
        (width, HEADER + self.panel_height + legend)
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        let (width, height) = self.size();
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        text(
            &mut out,
            width / 2.0,
            24.0,
            17.0,
            "middle",
            "#222",
            &self.title,
        );
        text(
            &mut out,
            width / 2.0,
            44.0,
            12.0,
            "middle",
            "#555",
            &self.subtitle,
        );
        for (i, panel) in self.panels.iter().enumerate() {
            let x0 = i as f64 * self.panel_width;
            draw_panel(
                &mut out,
                panel,
                x0,
                HEADER,
                self.panel_width,
                self.panel_height,
            );
        }
        let mut y = HEADER + self.panel_height + 8.0;
        for row in self.legend_rows(width) {
            let total: f64 = row.iter().map(|s| legend_entry_width(&s.name)).sum();
            let mut x = (width - total) / 2.0;
            for s in row {
                legend_swatch(&mut out, s, x + 12.0, y + 8.0);
                text(&mut out, x + 30.0, y + 12.0, 12.0, "start", "#222", &s.name);
                x += legend_entry_width(&s.name);
            }
            y += LEGEND_ROW;
        }
        out.push_str("</svg>\n");
        out
    }
}

fn legend_entry_width(name: &str) -> f64 {
    40.0 + 6.6 * name.chars().count() as f64
}

/// Tick positions: 4–8 "nice" values (1, 2, 2.5 or 5 × 10ᵏ apart) inside [lo, hi].
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / 6.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| (hi - lo) / s <= 8.0)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn tick_label(value: f64, step: f64) -> String {
    // As many decimals as the step needs (0.25 → 2, 0.2 → 1, 20 → 0).
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(6) as usize;
    format!("{value:.decimals$}")
}

fn draw_panel(out: &mut String, panel: &Panel, x0: f64, y0: f64, w: f64, h: f64) {
    let ((xl, xh), (yl, yh)) = panel.ranges();
    let (left, right) = (x0 + MARGIN_LEFT, x0 + w - MARGIN_RIGHT);
    let (top, bottom) = (y0 + MARGIN_TOP, y0 + h - MARGIN_BOTTOM);
    let sx = |x: f64| left + (x - xl) / (xh - xl) * (right - left);
    let sy = |y: f64| bottom - (y - yl) / (yh - yl) * (bottom - top);
    text(
        out,
        (left + right) / 2.0,
        y0 + 20.0,
        14.0,
        "middle",
        "#222",
        &panel.title,
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#fafafa" stroke="#888"/>"##,
        right - left,
        bottom - top
    );
    if panel.ticks {
        // Each tick: a grid line across the plot and its label outside it. x: (grid line from
        // (x, top) to (x, bottom), label below); y: (from (left, y) to (right, y), label left).
        let mut axis =
            |values: Vec<f64>, place: &dyn Fn(f64) -> ([f64; 4], f64, f64, &'static str)| {
                let step = if values.len() > 1 {
                    values[1] - values[0]
                } else {
                    1.0
                };
                for &t in &values {
                    let ([x1, y1, x2, y2], lx, ly, anchor) = place(t);
                    let _ = writeln!(
                        out,
                        r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#e4e4e4"/>"##
                    );
                    text(out, lx, ly, 11.0, anchor, "#444", &tick_label(t, step));
                }
            };
        axis(ticks(xl, xh), &|t| {
            let x = sx(t);
            ([x, top, x, bottom], x, bottom + 15.0, "middle")
        });
        axis(ticks(yl, yh), &|t| {
            let y = sy(t);
            ([left, y, right, y], left - 6.0, y + 4.0, "end")
        });
    }
    text(
        out,
        (left + right) / 2.0,
        bottom + 36.0,
        12.0,
        "middle",
        "#222",
        &panel.x_label,
    );
    let (cx, cy) = (x0 + 16.0, (top + bottom) / 2.0);
    let _ = writeln!(
        out,
        r##"<text x="{cx:.1}" y="{cy:.1}" font-size="12" text-anchor="middle" fill="#222" transform="rotate(-90 {cx:.1} {cy:.1})">{}</text>"##,
        escape(&panel.y_label)
    );
    let _ = writeln!(
        out,
        r#"<clipPath id="c{x0:.0}"><rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"/></clipPath><g clip-path="url(#c{x0:.0})">"#,
        right - left,
        bottom - top
    );
    for s in &panel.series {
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        if s.line && points.len() > 1 {
            let path: String = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect::<Vec<_>>()
                .join(" ");
            let dash = if s.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<polyline points="{path}" fill="none" stroke="{}" stroke-width="2" stroke-opacity="{}"{dash}/>"#,
                s.colour, s.opacity
            );
        }
        for &(x, y) in &points {
            marker(out, s.marker, x, y, s.marker_size, s.colour, s.opacity);
        }
    }
    let _ = writeln!(out, "</g>");
    for s in &panel.series {
        for (label, &(x, y)) in s.labels.iter().zip(&s.points) {
            if !label.is_empty() && x.is_finite() && y.is_finite() {
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#111" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"##,
                    sx(x) + s.marker_size + 3.0,
                    sy(y) + 4.0,
                    escape(label)
                );
            }
        }
    }
}

fn legend_swatch(out: &mut String, s: &Series, x: f64, y: f64) {
    if s.line {
        let dash = if s.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
            x - 10.0,
            x + 10.0,
            s.colour
        );
    }
    marker(out, s.marker, x, y, s.marker_size.min(6.0), s.colour, 1.0);
}

fn marker(out: &mut String, kind: Marker, x: f64, y: f64, r: f64, colour: Colour, opacity: f64) {
    let fill =
        format!(r#"fill="{colour}" fill-opacity="{opacity}" stroke="white" stroke-width="0.8""#);
    match kind {
        Marker::None => {}
        Marker::Circle => {
            let _ = writeln!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" {fill}/>"#
            );
        }
        Marker::Ring => {
            let _ = writeln!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-opacity="{opacity}"/>"#
            );
        }
        Marker::Square => {
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" {fill}/>"#,
                x - r,
                y - r,
                2.0 * r,
                2.0 * r
            );
        }
        Marker::Triangle => {
            let p = [
                (x, y - r * 1.2),
                (x - r * 1.1, y + r * 0.8),
                (x + r * 1.1, y + r * 0.8),
            ];
            polygon(out, &p, &fill);
        }
        Marker::Star => {
            let p: Vec<(f64, f64)> = (0..10)
                .map(|k| {
                    let angle = std::f64::consts::PI * (k as f64 / 5.0 - 0.5);
                    let radius = if k % 2 == 0 { r * 1.6 } else { r * 0.7 };
                    (x + radius * angle.cos(), y + radius * angle.sin())
                })
                .collect();
            let fill = format!(r##"fill="{colour}" stroke="#111" stroke-width="1""##);
            polygon(out, &p, &fill);
        }
    }
}

fn polygon(out: &mut String, points: &[(f64, f64)], style: &str) {
    let p: String = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(out, r#"<polygon points="{p}" {style}/>"#);
}

fn text(out: &mut String, x: f64, y: f64, size: f64, anchor: &str, colour: &str, content: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{colour}">{}</text>"#,
        escape(content)
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = ticks(13.2, 47.9);
        assert!(t.len() >= 4 && t.len() <= 8, "{t:?}");
        assert!(t.iter().all(|v| (13.2..=47.9).contains(v)));
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(40.0, 20.0), "40");
    }

    #[test]
    fn svg_has_every_series_and_escapes_text() {
        let mut panel = Panel::new("A & B", "x (%)", "y (%)");
        panel.series.push(Series::line(
            "FT <lr 1e-5>",
            PALETTE[0],
            vec![(0.0, 1.0), (1.0, 2.0)],
        ));
        panel.series.push(Series::points(
            "FLYP",
            PALETTE[1],
            Marker::Star,
            vec![(0.5, 1.5)],
        ));
        let svg = Figure::new("t", "s", vec![panel]).to_svg();
        assert!(svg.contains("A &amp; B"));
        assert!(svg.contains("FT &lt;lr 1e-5&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(
            svg.matches("<polygon").count(),
            2,
            "the star and its legend swatch"
        );
    }
}
