//! Report pictures: charts written as SVG ([`chart`]) and rasterised to PNG by resvg with egui's
//! own font (so the pictures need no system fonts and look the same everywhere); the demo's
//! figures ([`figures`]); 2-D projections of embeddings ([`projection`]).

pub mod bootstrap;
pub mod chart;
pub mod figures;
pub mod projection;

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::weights::write_atomic;
pub use chart::{Figure, Marker, PALETTE, Panel, Series};

/// Rasterise an SVG document to PNG bytes at `scale` × its size, on white.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options {
        font_family: "Ubuntu".into(),
        ..Default::default()
    };
    options
        .fontdb_mut()
        .load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|e| Error::Invalid(format!("internal: the report SVG does not parse: {e}")))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| Error::Invalid(format!("internal: cannot make a {w}×{h} picture")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // Opaque white background: premultiplied RGBA equals straight RGBA.
    let image = image::RgbaImage::from_raw(w, h, pixmap.take())
        .ok_or_else(|| Error::Invalid("internal: picture buffer size".into()))?;
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(image)
        .to_rgb8()
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::Invalid(format!("internal: PNG encoding: {e}")))?;
    Ok(bytes)
}

/// Write `figure` as `dir/stem.svg` and `dir/stem.png` (2× for sharp text), each atomically.
pub fn write_figure(figure: &Figure, dir: &Path, stem: &str) -> Result<()> {
    let svg = figure.to_svg();
    write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())?;
    write_atomic(&dir.join(format!("{stem}.png")), &svg_to_png(&svg, 2.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_the_figure_size_and_ink() {
        let mut panel = Panel::new("panel", "x", "y");
        panel.series.push(Series::line(
            "a line",
            PALETTE[2],
            vec![(0.0, 0.0), (1.0, 1.0)],
        ));
        let figure = Figure::new("title", "subtitle", vec![panel]);
        let png = svg_to_png(&figure.to_svg(), 1.0).expect("png");
        let image = image::load_from_memory(&png).expect("decodes").to_rgb8();
        let (w, h) = figure.size();
        assert_eq!(image.dimensions(), (w.ceil() as u32, h.ceil() as u32));
        // The line's colour (#e15759) is drawn, and text is drawn (dark pixels in the title row).
        let red = image.pixels().filter(|p| p.0 == [0xe1, 0x57, 0x59]).count();
        assert!(red > 100, "{red} line pixels");
        let title_ink = (0..w as u32)
            .flat_map(|x| (8..28).map(move |y| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y).0[0] < 100)
            .count();
        assert!(
            title_ink > 20,
            "{title_ink} dark pixels in the title row: no font?"
        );
    }
}
