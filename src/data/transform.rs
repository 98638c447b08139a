//! The single source of CLIP preprocessing, as transformers' `CLIPImageProcessor` does it (PIL
//! backend): to RGB (transparency composited onto white), resize the shortest side to `size` with bicubic
//! (new long side = floor(size·long/short)), center crop (`top = (h − crop_h) // 2`, zero padding
//! when the image is smaller), scale to [0, 1], normalise with the mean/std.

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use serde_json::Value;

use crate::error::{Error, Result};

/// OpenAI's CLIP normalisation constants, verbatim from their code.
#[allow(clippy::excessive_precision)]
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Images with more pixels than this are refused before decoding (a decompression-bomb guard).
pub const MAX_PIXELS: u64 = 100_000_000;

/// How to turn an image into the model's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Shortest side after resizing; `None` skips resizing.
    pub shortest_edge: Option<u32>,
    /// Center crop `(height, width)`; `None` skips cropping.
    pub crop: Option<(u32, u32)>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub rescale: f32,
    pub filter: FilterType,
}

impl Preprocess {
    /// OpenAI CLIP's preprocessing for a square `image_size`.
    pub fn clip(image_size: u32) -> Self {
        Self {
            shortest_edge: Some(image_size),
            crop: Some((image_size, image_size)),
            mean: OPENAI_MEAN,
            std: OPENAI_STD,
            rescale: 1.0 / 255.0,
            filter: FilterType::CatmullRom,
        }
    }

    /// `dir/preprocessor_config.json` when present, else [`Preprocess::clip`] of `image_size`.
    pub fn for_model_dir(dir: &Path, image_size: u32) -> Result<Self> {
        let path = dir.join("preprocessor_config.json");
        if !path.is_file() {
            return Ok(Self::clip(image_size));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::config(&path, e.to_string()))?;
        Self::from_hf_json(&json, image_size).map_err(|reason| Error::config(&path, reason))
    }

    /// Read transformers' image-processor fields; absent ones keep CLIP's defaults.
    pub fn from_hf_json(json: &Value, image_size: u32) -> std::result::Result<Self, String> {
        let mut p = Self::clip(image_size);
        let flag = |key: &str| json.get(key).and_then(Value::as_bool).unwrap_or(true);
        if let Some(size) = json.get("size") {
            p.shortest_edge = Some(match size {
                Value::Number(n) => n.as_u64().ok_or("size must be a positive integer")? as u32,
                Value::Object(o) => {
                    o.get("shortest_edge")
                        .or_else(|| o.get("height"))
                        .and_then(Value::as_u64)
                        .ok_or("size needs shortest_edge or height")? as u32
                }
                _ => return Err("size must be a number or an object".into()),
            });
        }
        if let Some(crop) = json.get("crop_size") {
            p.crop = Some(match crop {
                Value::Number(n) => {
                    let s = n.as_u64().ok_or("crop_size must be a positive integer")? as u32;
                    (s, s)
                }
                Value::Object(o) => {
                    let get = |k: &str| o.get(k).and_then(Value::as_u64).map(|v| v as u32);
                    (
                        get("height").ok_or("crop_size needs height")?,
                        get("width").ok_or("crop_size needs width")?,
                    )
                }
                _ => return Err("crop_size must be a number or an object".into()),
            });
        }
        let triple = |key: &str| -> std::result::Result<Option<[f32; 3]>, String> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let v: Vec<f32> = a
                        .iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect();
                    if v.len() == 3 {
                        Ok(Some([v[0], v[1], v[2]]))
                    } else {
                        Err(format!("{key} must be 3 numbers"))
                    }
                }
                Some(_) => Err(format!("{key} must be a list of 3 numbers")),
            }
        };
        if let Some(mean) = triple("image_mean")? {
            p.mean = mean;
        }
        if let Some(std) = triple("image_std")? {
            if std.iter().any(|s| *s <= 0.0) {
                return Err("image_std must be positive".into());
            }
            p.std = std;
        }
        if let Some(r) = json.get("rescale_factor").and_then(Value::as_f64) {
            p.rescale = r as f32;
        }
        if !flag("do_rescale") {
            p.rescale = 1.0;
        }
        if !flag("do_normalize") {
            p.mean = [0.0; 3];
            p.std = [1.0; 3];
        }
        if !flag("do_resize") {
            p.shortest_edge = None;
        }
        if !flag("do_center_crop") {
            p.crop = None;
        }
        // PIL's resample codes: 0 nearest, 2 bilinear, 3 bicubic.
        p.filter = match json.get("resample").and_then(Value::as_u64) {
            Some(0) => FilterType::Nearest,
            Some(2) => FilterType::Triangle,
            _ => FilterType::CatmullRom,
        };
        if matches!(p.shortest_edge, Some(0)) || matches!(p.crop, Some((0, _)) | Some((_, 0))) {
            return Err("size and crop_size must be positive".into());
        }
        Ok(p)
    }

    /// transformers' `preprocessor_config.json` for these settings.
    pub fn to_hf_json(&self) -> Value {
        let resample = match self.filter {
            FilterType::Nearest => 0,
            FilterType::Triangle => 2,
            _ => 3,
        };
        let (crop_h, crop_w) = self.crop.unwrap_or((0, 0));
        serde_json::json!({
            "image_processor_type": "CLIPImageProcessor",
            "do_convert_rgb": true,
            "do_resize": self.shortest_edge.is_some(),
            "size": {"shortest_edge": self.shortest_edge.unwrap_or(0)},
            "resample": resample,
            "do_center_crop": self.crop.is_some(),
            "crop_size": {"height": crop_h, "width": crop_w},
            "do_rescale": true,
            "rescale_factor": self.rescale,
            "do_normalize": true,
            "image_mean": self.mean,
            "image_std": self.std,
        })
    }

    /// The output's `(height, width)` for an input of `(h, w)`.
    pub fn output_size(&self, h: u32, w: u32) -> (u32, u32) {
        match self.crop {
            Some(crop) => crop,
            None => self.shortest_edge.map_or((h, w), |s| resized_size(h, w, s)),
        }
    }

    /// RGB image → CHW floats, normalised.
    ///
    /// # Shapes
    /// - returns `[3 · out_h · out_w]`, channel-major, with `(out_h, out_w)` = [`Self::output_size`]
    pub fn apply(&self, image: &RgbImage) -> Vec<f32> {
        let (h, w) = (image.height(), image.width());
        let resized;
        let image = match self.shortest_edge {
            Some(s) => {
                let (nh, nw) = resized_size(h, w, s);
                if (nh, nw) == (h, w) {
                    image
                } else {
                    resized = image::imageops::resize(image, nw, nh, self.filter);
                    &resized
                }
            }
            None => image,
        };
        let (ih, iw) = (image.height() as i64, image.width() as i64);
        let (oh, ow) = self.crop.unwrap_or((ih as u32, iw as u32));
        let (oh, ow) = (oh as i64, ow as i64);
        // transformers' center_crop: top = (h − crop_h) // 2, zero-padded when negative.
        let top = (ih - oh).div_euclid(2);
        let left = (iw - ow).div_euclid(2);
        let plane = (oh * ow) as usize;
        let mut out = vec![0.0f32; 3 * plane];
        for c in 0..3 {
            let (scale, mean) = (self.rescale / self.std[c], self.mean[c] / self.std[c]);
            for y in 0..oh {
                for x in 0..ow {
                    let (sy, sx) = (y + top, x + left);
                    let raw = if (0..ih).contains(&sy) && (0..iw).contains(&sx) {
                        image.get_pixel(sx as u32, sy as u32).0[c] as f32
                    } else {
                        0.0
                    };
                    out[c * plane + (y * ow + x) as usize] = raw * scale - mean;
                }
            }
        }
        out
    }
}

impl Preprocess {
    /// FLYP's train augmentation (torchvision `RandomResizedCrop(size, scale=(0.9, 1.0))`, bicubic):
    /// a crop of 90–100 % of the area with aspect ratio log-uniform in [3/4, 4/3] (10 tries, then
    /// the whole image center-cropped to the nearest allowed ratio), resized to `size`×`size`,
    /// then scaled and normalised like [`Preprocess::apply`].
    pub fn apply_random_resized_crop(
        &self,
        image: &RgbImage,
        size: u32,
        rng: &mut crate::data::SplitMix64,
    ) -> Vec<f32> {
        let (w, h) = (image.width() as f64, image.height() as f64);
        let area = w * h;
        let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
        let mut chosen = None;
        for _ in 0..10 {
            let target = area * (0.9 + 0.1 * rng.next_f64());
            let ratio = (log_lo + (log_hi - log_lo) * rng.next_f64()).exp();
            let cw = (target * ratio).sqrt().round();
            let ch = (target / ratio).sqrt().round();
            if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
                let x = (rng.next_f64() * (w - cw + 1.0)).floor().min(w - cw);
                let y = (rng.next_f64() * (h - ch + 1.0)).floor().min(h - ch);
                chosen = Some((x as u32, y as u32, cw as u32, ch as u32));
                break;
            }
        }
        let (x, y, cw, ch) = chosen.unwrap_or_else(|| {
            // torchvision's fallback: the largest center crop within the ratio bounds.
            let ratio = w / h;
            let (cw, ch) = if ratio < 3.0 / 4.0 {
                (w, (w / (3.0 / 4.0)).round())
            } else if ratio > 4.0 / 3.0 {
                ((h * (4.0 / 3.0)).round(), h)
            } else {
                (w, h)
            };
            (
                ((w - cw) / 2.0) as u32,
                ((h - ch) / 2.0) as u32,
                cw.max(1.0) as u32,
                ch.max(1.0) as u32,
            )
        });
        let crop = image::imageops::crop_imm(image, x, y, cw, ch).to_image();
        let resized = image::imageops::resize(&crop, size, size, self.filter);
        let exact = Preprocess {
            shortest_edge: None,
            crop: None,
            ..self.clone()
        };
        exact.apply(&resized)
    }
}

/// transformers' `get_resize_output_image_size(default_to_square=False)`: the short side becomes
/// `size`, the long side `floor(size · long / short)`.
pub fn resized_size(h: u32, w: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size as u64 * long as u64) / short.max(1) as u64).max(1) as u32;
    if w <= h {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// Decode an image file to RGB: format from content (not the extension), EXIF orientation applied,
/// transparency composited onto white (transformers' `convert_to_rgb`), grayscale replicated,
/// 16-bit scaled to 8-bit. Refuses images over
/// [`MAX_PIXELS`] before allocating them.
pub fn decode_image(path: &Path) -> Result<RgbImage> {
    let bad = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    // Say "truncated" where the decoders say "unexpected end of file".
    let decode_error = |e: image::ImageError| {
        let text = e.to_string();
        if text.contains("end of file") || text.contains("Not enough bytes") {
            bad(format!("truncated file ({text})"))
        } else {
            bad(text)
        }
    };
    // A FIFO or device would block or never end: only regular files (links to them too).
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(bad("not a regular file (a folder, FIFO or device)".into()));
    }
    let mut head = [0u8; 64];
    let read = {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        file.read(&mut head).map_err(|e| Error::io(path, e))?
    };
    if read == 0 {
        return Err(bad("empty file (0 bytes)".into()));
    }
    // The content decides the format, never the extension.
    let format = image::guess_format(&head[..read]).map_err(|_| {
        bad("not a recognised image format (PNG, JPEG, WebP, GIF, BMP, TIFF)".into())
    })?;
    let mut reader = ImageReader::open(path).map_err(|e| Error::io(path, e))?;
    reader.set_format(format);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(bad(format!(
            "{w}×{h} pixels is over the {MAX_PIXELS}-pixel limit"
        )));
    }
    if w == 0 || h == 0 {
        return Err(bad("image has no pixels".into()));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(4 * MAX_PIXELS * 4);
    decoder.set_limits(limits).map_err(|e| bad(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    if !image.color().has_alpha() {
        return Ok(image.to_rgb8());
    }
    let rgba = image.to_rgba8();
    Ok(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        image::Rgb([over_white(r, a), over_white(g, a), over_white(b, a)])
    }))
}

/// One channel of PIL's `alpha_composite` onto opaque white, in PIL's fixed point
/// (libImaging/AlphaComposite.c, 7 precision bits), so results match to the last bit.
fn over_white(c: u8, a: u8) -> u8 {
    const PRECISION: u32 = 7;
    let coef1 = a as u32 * (1 << PRECISION); // = a·255·255·2⁷ / (255·255) for an opaque background
    let coef2 = 255 * (1 << PRECISION) - coef1;
    let tmp = c as u32 * coef1 + 255 * coef2 + (0x80 << PRECISION);
    ((((tmp >> 8) + tmp) >> 8) >> PRECISION) as u8
}

/// A small RGB copy of an image file for display (the app's thumbnails): decoded as
/// [`decode_image`] does, scaled to fit `size`×`size` with its aspect kept (never enlarged).
pub fn thumbnail(path: &Path, size: u32) -> Result<RgbImage> {
    let image = decode_image(path)?;
    let (w, h) = image.dimensions();
    let scale = (size as f64 / w.max(h).max(1) as f64).min(1.0);
    let fit = |v: u32| ((v as f64 * scale).round() as u32).max(1);
    Ok(image::imageops::thumbnail(&image, fit(w), fit(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparency_goes_to_white() {
        assert_eq!(over_white(10, 255), 10);
        assert_eq!(over_white(10, 0), 255);
        assert_eq!(over_white(0, 128), 127); // 255·(127/255)
    }

    #[test]
    fn resize_keeps_aspect_with_floor() {
        assert_eq!(resized_size(43, 57, 32), (32, 42)); // 32·57/43 = 42.4
        assert_eq!(resized_size(120, 80, 32), (48, 32));
        assert_eq!(resized_size(32, 32, 32), (32, 32));
    }

    #[test]
    fn crop_pads_small_images_with_zero_pixels() {
        let p = Preprocess {
            shortest_edge: None,
            crop: Some((4, 4)),
            ..Preprocess::clip(4)
        };
        let img = RgbImage::from_pixel(2, 2, image::Rgb([255, 255, 255]));
        let out = p.apply(&img);
        let zero = -OPENAI_MEAN[0] / OPENAI_STD[0];
        let one = (1.0 - OPENAI_MEAN[0]) / OPENAI_STD[0];
        assert!((out[0] - zero).abs() < 1e-6); // corner is padding
        assert!((out[4 + 1] - one).abs() < 1e-5); // (1,1) is the image
    }
}
