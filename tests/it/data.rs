//! Dataset folders seeded with trouble: every bad file reported with a reason, every good one
//! loaded, no panic.

use std::path::{Path, PathBuf};

use flyp::data::loader::{Loader, LoaderConfig};
use flyp::data::{Preprocess, Scan};

use crate::common::{fixtures, temp_dir};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 5) as u8, 90, 255])
    });
    let img = match format {
        image::ImageFormat::WebP | image::ImageFormat::Gif => image::DynamicImage::ImageRgba8(rgba),
        _ => image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(rgba).to_rgb8()),
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encoded(w, h, image::ImageFormat::Png)
}

/// A PNG whose header claims 20000×20000 (a few bytes of pixel data follow): must be refused
/// before any allocation.
fn huge_png_header() -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend(data);
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    };
    let mut ihdr = Vec::new();
    ihdr.extend(20000u32.to_be_bytes());
    ihdr.extend(20000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn trouble_folder() -> (PathBuf, Vec<&'static str>, Vec<&'static str>) {
    let root = temp_dir("trouble");
    let cat = root.join("cat");
    let dog = root.join("dog_breed");
    let good = png(40, 30);
    write(&cat.join("plain.png"), &good);
    write(&cat.join("tiny 1x1.png"), &png(1, 1));
    write(&cat.join("café ☕ größe.png"), &good);
    write(&cat.join("  spaced   name .png"), &good);
    write(
        &cat.join("lossless.webp"),
        &encoded(12, 10, image::ImageFormat::WebP),
    );
    write(
        &cat.join("anim.gif"),
        &encoded(12, 10, image::ImageFormat::Gif),
    );
    write(
        &cat.join("old.bmp"),
        &encoded(12, 10, image::ImageFormat::Bmp),
    );
    write(
        &cat.join("scan.tiff"),
        &encoded(12, 10, image::ImageFormat::Tiff),
    );
    write(&cat.join("really_a_png.jpg"), &good); // the content decides, not the extension
    for f in ["cmyk.jpg", "palette_alpha.png", "gray16.png"] {
        std::fs::copy(fixtures().join("trouble").join(f), cat.join(f)).expect("copy");
    }
    std::fs::copy(
        fixtures().join("images/tall80x120.jpg"),
        dog.join("photo.jpg"),
    )
    .ok();
    write(
        &dog.join("photo.jpg"),
        &std::fs::read(fixtures().join("images/tall80x120.jpg")).expect("jpg"),
    );
    write(&dog.join("nested/deeper.png"), &good);
    write(&dog.join("truncated.png"), &good[..good.len() / 2]);
    write(&dog.join("empty.jpg"), b"");
    write(&dog.join("notes.png"), b"these are my notes, not a picture");
    write(&dog.join("huge.png"), &huge_png_header());
    write(&dog.join(".DS_Store"), b"junk");
    write(&root.join(".hidden_class/x.png"), &good);
    std::fs::create_dir_all(root.join("empty_class")).expect("mkdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&dog, dog.join("nested/loop")).expect("symlink");
    let good_files = vec![
        "plain.png",
        "tiny 1x1.png",
        "café ☕ größe.png",
        "  spaced   name .png",
        "lossless.webp",
        "anim.gif",
        "old.bmp",
        "scan.tiff",
        "really_a_png.jpg",
        "cmyk.jpg",
        "palette_alpha.png",
        "gray16.png",
        "photo.jpg",
        "deeper.png",
    ];
    let bad_files = vec!["truncated.png", "empty.jpg", "notes.png", "huge.png"];
    (root, good_files, bad_files)
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn a_folder_seeded_with_trouble_is_scanned_and_loaded() {
    let (root, good, bad) = trouble_folder();
    let scan = Scan::folder(&root).expect("scan");
    assert_eq!(
        scan.classes,
        vec!["cat", "dog_breed"],
        "hidden and empty folders are not classes"
    );
    let loaded: Vec<String> = scan.train.iter().map(|s| name(&s.path)).collect();
    for g in &good {
        assert!(
            loaded.contains(&g.to_string()),
            "{g} was not loaded: {loaded:?}"
        );
    }
    assert_eq!(scan.train.len(), good.len(), "loaded {loaded:?}");
    for b in &bad {
        let entry = scan.skipped.iter().find(|s| name(&s.path) == *b);
        let entry = entry.unwrap_or_else(|| panic!("{b} not reported: {:?}", scan.skipped));
        assert!(!entry.reason.is_empty());
        eprintln!("skipped {b}: {}", entry.reason);
    }
    let reason = |file: &str| {
        let found = scan.skipped.iter().find(|s| name(&s.path) == file);
        found.map(|s| s.reason.clone()).unwrap_or_default()
    };
    let expect = [
        ("huge.png", "20000×20000 pixels is over"),
        ("empty.jpg", "empty file"),
        ("truncated.png", "truncated"),
        ("notes.png", "not a recognised image format"),
    ];
    for (file, why) in expect {
        assert!(reason(file).contains(why), "{file}: {}", reason(file));
    }
    assert!(
        scan.skipped
            .iter()
            .any(|s| s.reason.contains("symlink loop")),
        "loop not reported: {:?}",
        scan.skipped
    );
    assert!(
        scan.warnings.iter().any(|w| w.contains("empty_class")),
        "empty folder not reported: {:?}",
        scan.warnings
    );
    assert!(
        !loaded.iter().any(|n| n.starts_with('.')),
        "hidden file loaded"
    );

    // Every good file goes through the loader, shuffled and augmented, as 32×32 CLIP inputs.
    let size = 32;
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        seed: 3,
        augment: true,
        ..Default::default()
    };
    let loader = Loader::new(scan.train.clone(), Preprocess::clip(size), size, config);
    let batches: Vec<_> = loader.epoch(0).collect();
    let total: usize = batches.iter().map(|b| b.len()).sum();
    assert_eq!(total, good.len());
    assert!(batches.iter().all(|b| b.skipped.is_empty()));
    assert!(
        batches
            .iter()
            .all(|b| b.pixels.len() == b.len() * 3 * 32 * 32)
    );
    assert!(
        batches
            .iter()
            .flat_map(|b| &b.pixels)
            .all(|v| v.is_finite())
    );
    // The disk cache gives back exactly what decoding gave, without decoding.
    let cache = temp_dir("cache");
    let config = LoaderConfig {
        batch_size: 5,
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    let cached = Loader::new(scan.train.clone(), Preprocess::clip(size), size, config);
    let first: Vec<f32> = cached.epoch(0).flat_map(|b| b.pixels).collect();
    assert_eq!(
        std::fs::read_dir(&cache).expect("cache").count(),
        good.len()
    );
    let second: Vec<f32> = cached.epoch(1).flat_map(|b| b.pixels).collect();
    assert_eq!(first, second);
    // Same seed and epoch → same order; another epoch → another order.
    assert_eq!(loader.order(0), loader.order(0));
    assert_ne!(loader.order(0), loader.order(1));
}

#[test]
fn dataset_errors_name_the_problem() {
    let one = temp_dir("oneclass");
    write(&one.join("cat/a.png"), &png(8, 8));
    let err = Scan::folder(&one).expect_err("single class").to_string();
    assert!(err.contains("only one class ('cat')"), "{err}");

    let dead = temp_dir("deadclass");
    write(&dead.join("cat/a.png"), &png(8, 8));
    write(&dead.join("dog/a.png"), b"not a png");
    let err = Scan::folder(&dead)
        .expect_err("class without images")
        .to_string();
    assert!(err.contains("class 'dog' has no usable image"), "{err}");

    let none = temp_dir("noimages");
    let err = Scan::folder(&none).expect_err("empty").to_string();
    assert!(err.contains("no usable image"), "{err}");
}

#[test]
fn split_layouts_and_csv_manifests_are_read() {
    let root = temp_dir("splits");
    for split in ["train", "val"] {
        for class in ["a_b", "c"] {
            write(&root.join(split).join(class).join("x.png"), &png(8, 8));
            write(&root.join(split).join(class).join("y.png"), &png(9, 8));
        }
    }
    std::fs::write(
        root.join("classnames.txt"),
        "# display names\nc,sea lion\nzebra,zebra\n",
    )
    .expect("names");
    let scan = Scan::folder(&root).expect("scan");
    assert_eq!(scan.layout, "train/val/test folders");
    assert_eq!(scan.prompt_names, vec!["a b", "sea lion"]);
    assert!(
        scan.warnings
            .iter()
            .any(|w| w.contains("'zebra' is not a class")),
        "{:?}",
        scan.warnings
    );
    assert_eq!(scan.train.len(), 4);
    assert_eq!(scan.val.as_ref().map(Vec::len), Some(4));
    assert_eq!(flyp::data::folder::prompt_name(&scan.classes[0]), "a b");

    let csv = root.join("manifest.csv");
    std::fs::write(
        &csv,
        "path,label,caption\ntrain/a_b/x.png,bird,\"a bird, small\"\ntrain/c/x.png,cat,\n",
    )
    .expect("csv");
    let scan = Scan::folder(&csv).expect("csv scan");
    assert_eq!(scan.classes, vec!["bird", "cat"]);
    assert_eq!(scan.train[0].caption.as_deref(), Some("a bird, small"));
    // Pretraining pairs list an image once per caption: every pair is kept; a row repeating
    // path and caption is dropped with a warning.
    std::fs::write(
        &csv,
        "path,label,caption\ntrain/c/x.png,cat,a cat\ntrain/c/x.png,cat,a small cat\ntrain/c/x.png,cat,a cat\ntrain/a_b/x.png,bird,a bird\n",
    )
    .expect("csv");
    let scan = Scan::folder(&csv).expect("csv scan");
    let captions: Vec<_> = scan.train.iter().map(|s| s.caption.as_deref()).collect();
    assert_eq!(
        captions,
        vec![Some("a cat"), Some("a small cat"), Some("a bird")]
    );
    assert!(
        scan.warnings
            .iter()
            .any(|w| w.contains("1 row(s) repeat") && w.contains("line 4 repeats line 2")),
        "{:?}",
        scan.warnings
    );

    let (train, val) = flyp::data::folder::stratified_split(
        &Scan::folder(&root.join("train")).expect("scan").train,
        2,
        0.5,
        1,
    );
    assert_eq!((train.len(), val.len()), (2, 2));
    assert!(val.iter().any(|s| s.label == 0) && val.iter().any(|s| s.label == 1));
}

/// The demo's split rules on the bundled data (README, "How the demo is designed"): emoji are
/// split by code point, so no code point the demo model was pretrained on (pretraining.txt) is in
/// any demo set, none of the ID training or validation emoji is in a test or OOD set, the OOD sets
/// hold the ID test emoji in other styles, and every reported test set has at least 400 images.
#[test]
fn the_bundled_demo_data_keeps_its_split_rules() {
    use std::collections::BTreeSet;
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/emoji-subset");
    // `1f600.png` or `1f600-emojione.png`: the code point is the name up to the style.
    let code = |s: &flyp::data::Sample| -> String {
        let stem = s
            .path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        ["-emojione", "-fxemoji", "-streamline-emojis"]
            .iter()
            .find_map(|style| stem.strip_suffix(style))
            .unwrap_or(&stem)
            .to_string()
    };
    let codes =
        |samples: &[flyp::data::Sample]| -> BTreeSet<String> { samples.iter().map(code).collect() };
    let id = Scan::folder(&assets.join("twemoji")).expect("twemoji");
    assert_eq!(id.classes.len(), 49);
    assert!(id.skipped.is_empty());
    let (train, val, test) = (
        codes(&id.train),
        codes(id.val.as_deref().expect("val")),
        codes(id.test.as_deref().expect("test")),
    );
    let pretraining: BTreeSet<String> = std::fs::read_to_string(assets.join("pretraining.txt"))
        .expect("pretraining.txt")
        .lines()
        .map(String::from)
        .collect();
    assert!(
        pretraining.len() > 900,
        "{} pretraining emoji",
        pretraining.len()
    );
    let mut sizes = vec![("test", id.test.as_ref().map_or(0, Vec::len))];
    for ood_name in ["noto", "unseen-styles"] {
        let scan = Scan::folder(&assets.join(ood_name)).expect("ood");
        assert!(scan.skipped.is_empty());
        let (ood, warnings) = scan.align_to(&id.classes).expect("same classes");
        // Some small classes have no test emoji drawn in the unseen styles; that is all it says.
        assert!(
            warnings
                .iter()
                .all(|w| w.ends_with("of the 49 training classes")),
            "{warnings:?}"
        );
        let ood_codes = codes(&ood);
        assert!(
            ood_codes.is_subset(&test),
            "{ood_name}: emoji outside the ID test emoji"
        );
        assert!(
            ood_codes.is_disjoint(&train) && ood_codes.is_disjoint(&val),
            "{ood_name}"
        );
        assert!(
            ood_codes.is_disjoint(&pretraining),
            "{ood_name} shares emoji with pretraining"
        );
        sizes.push((ood_name, ood.len()));
    }
    for (name, set) in [("train", &train), ("val", &val), ("test", &test)] {
        assert!(
            set.is_disjoint(&pretraining),
            "{name} shares emoji with pretraining"
        );
    }
    assert!(train.is_disjoint(&test) && val.is_disjoint(&test) && train.is_disjoint(&val));
    for (name, n) in sizes {
        assert!(
            n >= 400,
            "{name}: {n} images, the design needs at least 400"
        );
    }
    // The unseen styles are kept out of the pretraining pairs too: pretraining.txt lists code
    // points, and the styles' files exist only in unseen-styles/.
    for style in ["emojione", "fxemoji", "streamline-emojis"] {
        let found = walk(&assets)
            .iter()
            .filter(|p| p.to_string_lossy().contains(style))
            .count();
        let in_unseen = walk(&assets.join("unseen-styles"))
            .iter()
            .filter(|p| p.to_string_lossy().contains(style))
            .count();
        assert!(
            found > 0 && found == in_unseen,
            "{style}: {found} files, {in_unseen} in unseen-styles"
        );
    }
    let captions = Scan::folder(&assets.join("captions.csv")).expect("captions");
    assert_eq!(captions.train.len(), id.train.len());
    assert!(
        captions
            .train
            .iter()
            .all(|s| s.caption.as_deref().is_some_and(|c| !c.is_empty()))
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn evaluation_sets_must_use_training_classes() {
    let train = ["cat", "dog", "emu"].map(String::from).to_vec();
    let root = temp_dir("evalsets");
    write(&root.join("fewer/cat/a.png"), &png(8, 8));
    write(&root.join("fewer/emu/a.png"), &png(8, 8));
    let fewer = Scan::folder(&root.join("fewer")).expect("scan");
    let (samples, warnings) = fewer.align_to(&train).expect("a subset is fine");
    assert_eq!(
        samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(
        warnings[0].contains("has 2 of the 3 training classes"),
        "{warnings:?}"
    );
    write(&root.join("other/cat/a.png"), &png(8, 8));
    write(&root.join("other/yak/a.png"), &png(8, 8));
    let other = Scan::folder(&root.join("other")).expect("scan");
    let err = other
        .align_to(&train)
        .expect_err("yak is unknown")
        .to_string();
    assert!(
        err.contains("classes not in the training set: 'yak'"),
        "{err}"
    );
}

#[test]
fn thumbnails_fit_the_box_keep_the_aspect_and_never_enlarge() {
    let images = crate::common::fixtures().join("images");
    let tall = flyp::data::transform::thumbnail(&images.join("tall80x120.jpg"), 64).expect("jpeg");
    assert_eq!(tall.dimensions(), (43, 64)); // 80·64/120 = 42.7
    let wide = flyp::data::transform::thumbnail(&images.join("wide57x43.png"), 64).expect("png");
    assert_eq!(wide.dimensions(), (57, 43)); // already inside the box: kept
    let error = flyp::data::transform::thumbnail(&crate::common::fixtures().join("README.md"), 64)
        .unwrap_err()
        .to_string();
    assert!(error.contains("README.md"), "{error}");
}
