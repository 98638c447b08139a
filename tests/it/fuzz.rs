//! Seeded corruption: a few hundred broken copies of a tiny model folder (fed to `flyp eval`) and
//! of a small CSV manifest (fed to `flyp scan`). Every exit is 0 or 1; a failure is one line;
//! nothing panics or aborts.

use std::path::PathBuf;
use std::process::Command;

use crate::cli::emoji;
use crate::common::{fixtures, temp_dir};

/// The library's seeded generator: the same cases on every machine.
type Rng = flyp::data::SplitMix64;

/// Flip bytes, truncate, or both; what was done, for the failure message.
fn corrupt_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            format!("{n} bit flips")
        }
        1 => {
            let len = rng.below(bytes.len());
            bytes.truncate(len);
            format!("truncated to {len}")
        }
        _ => {
            // Bytes flipped in the first 256 (headers, lengths), then truncated.
            for _ in 0..4 {
                let at = rng.below(bytes.len().min(256));
                bytes[at] = rng.next_u64() as u8;
            }
            let len = bytes.len() - rng.below(bytes.len() / 2 + 1);
            bytes.truncate(len);
            format!("header bytes replaced, truncated to {len}")
        }
    }
}

/// A field of a JSON object removed or given an odd value.
fn corrupt_json(text: &str, rng: &mut Rng) -> Option<(String, String)> {
    let mut json: serde_json::Value = serde_json::from_str(text).ok()?;
    let section = ["", "text_config", "vision_config"][rng.below(3)];
    let object = if section.is_empty() {
        json.as_object_mut()?
    } else {
        json.get_mut(section)?.as_object_mut()?
    };
    let keys: Vec<String> = object.keys().cloned().collect();
    let key = keys.get(rng.below(keys.len()))?.clone();
    let odd = [
        serde_json::Value::Null,
        0.into(),
        (-1).into(),
        1_000_000_000_000u64.into(),
        "x".into(),
        serde_json::json!([1, 2]),
        3.5.into(),
    ];
    let what = if rng.below(3) == 0 {
        object.remove(&key);
        format!("removed {section}.{key}")
    } else {
        let value = odd[rng.below(odd.len())].clone();
        let what = format!("{section}.{key} = {value}");
        object.insert(key, value);
        what
    };
    Some((json.to_string(), what))
}

/// Runs `flyp` and checks the exit: 0, or 1 with exactly one `error:` line and no panic.
fn check_exit(args: &[&str], case: &str) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_flyp"))
        .args(args)
        .output()
        .expect("run flyp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{case}: exit {code:?} (killed by a signal or aborted?)\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{case}: panicked\n{stderr}"
    );
    if code == Some(1) {
        let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{case}: expected one error line\n{stderr}");
    }
    code == Some(0)
}

/// A dataset of 3 classes × 2 images (Twemoji test images).
fn small_data(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    let test = PathBuf::from(emoji("twemoji/test"));
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&test)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    classes.sort();
    for class in classes.iter().take(3) {
        let to = dir.join(class.file_name().expect("name"));
        std::fs::create_dir_all(&to).expect("mkdir");
        let mut images: Vec<PathBuf> = std::fs::read_dir(class)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        images.sort();
        for image in images.iter().take(2) {
            std::fs::copy(image, to.join(image.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

#[test]
fn corrupted_model_folders_give_one_line_or_succeed() {
    let data = small_data("fuzz-model-data");
    let source = fixtures().join("tiny-a");
    let files = [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
    ];
    let originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(source.join(f)).expect("read"))
        .collect();
    let dir = temp_dir("fuzz-model");
    let mut rng = Rng::new(17);
    let (mut passed, cases) = (0, 200);
    for case in 0..cases {
        for (file, bytes) in files.iter().zip(&originals) {
            std::fs::write(dir.join(file), bytes).expect("write");
        }
        let which = rng.below(files.len());
        let path = dir.join(files[which]);
        let mut bytes = originals[which].clone();
        let what = match std::str::from_utf8(&bytes)
            .ok()
            .filter(|_| files[which].ends_with(".json") && rng.below(2) == 0)
            .and_then(|text| corrupt_json(text, &mut rng))
        {
            Some((text, what)) => {
                bytes = text.into_bytes();
                what
            }
            None => corrupt_bytes(&mut bytes, &mut rng),
        };
        std::fs::write(&path, &bytes).expect("write");
        let label = format!("case {case}: {} {what}", files[which]);
        let ok = check_exit(
            &[
                "eval",
                "--device",
                "cpu",
                "--model",
                dir.to_str().expect("utf-8"),
                "--data",
                data.to_str().expect("utf-8"),
                "--templates",
                "simple",
            ],
            &label,
        );
        passed += usize::from(ok);
    }
    eprintln!(
        "corrupted models: {passed} of {cases} still evaluated, the rest refused in one line"
    );
}

#[test]
fn corrupted_csv_manifests_give_one_line_or_succeed() {
    let data = small_data("fuzz-csv-data");
    let mut rows = vec!["path,label,caption".to_string()];
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    classes.sort();
    for class in &classes {
        let name = class
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        for image in std::fs::read_dir(class).expect("list") {
            let image = image.expect("entry").path();
            let file = image
                .strip_prefix(&data)
                .expect("below")
                .display()
                .to_string();
            rows.push(format!("{file},{name},\"a {name}, drawn\""));
        }
    }
    let original = rows.join("\n");
    let csv = data.join("pairs.csv");
    let mut rng = Rng::new(29);
    let (mut passed, cases) = (0, 200);
    for case in 0..cases {
        let (text, what): (Vec<u8>, String) = match rng.below(4) {
            0 | 1 => {
                let mut bytes = original.clone().into_bytes();
                let what = corrupt_bytes(&mut bytes, &mut rng);
                (bytes, what)
            }
            2 => {
                // A field removed from some lines.
                let mut lines: Vec<String> = original.lines().map(String::from).collect();
                let n = 1 + rng.below(lines.len());
                for _ in 0..n {
                    let at = rng.below(lines.len());
                    let mut fields: Vec<&str> = lines[at].split(',').collect();
                    fields.remove(rng.below(fields.len()));
                    lines[at] = fields.join(",");
                }
                (
                    lines.join("\n").into_bytes(),
                    format!("a field removed from {n} lines"),
                )
            }
            _ => {
                // Lines repeated, reordered, or quotes left open.
                let mut lines: Vec<String> = original.lines().map(String::from).collect();
                let at = rng.below(lines.len());
                let what = match rng.below(3) {
                    0 => {
                        let line = lines[at].clone();
                        lines.push(line);
                        "a line repeated"
                    }
                    1 => {
                        lines.swap(0, at);
                        "the header moved"
                    }
                    _ => {
                        lines[at].push('"');
                        "an open quote"
                    }
                };
                (lines.join("\n").into_bytes(), what.to_string())
            }
        };
        std::fs::write(&csv, &text).expect("write");
        let label = format!("case {case}: {what}");
        passed += usize::from(check_exit(&["scan", csv.to_str().expect("utf-8")], &label));
    }
    eprintln!("corrupted CSVs: {passed} of {cases} still scanned, the rest refused in one line");
}
