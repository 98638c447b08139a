//! Hub downloads against a local HTTP server that serves the tiny fixture model the way
//! huggingface.co does (`/{owner}/{name}/resolve/main/{file}`), plus the failures users meet:
//! offline, unknown ids, a connection that breaks mid-file.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use crate::common::fixtures;
use flyp::hub;

/// How the fake Hub answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    /// Promise the whole model.safetensors, send half, hang up.
    BreakSafetensors,
}

/// Serve `tests/fixtures/tiny-a` as `test/tiny-a` on 127.0.0.1 for `requests` requests; returns
/// the endpoint.
fn fake_hub(mode: Mode, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let file = path
                .strip_prefix("/test/tiny-a/resolve/main/")
                .map(|f| fixtures().join("tiny-a").join(f));
            match file.and_then(|f| std::fs::read(f).ok()) {
                Some(body) => {
                    let sent = if mode == Mode::BreakSafetensors && path.ends_with(".safetensors") {
                        &body[..body.len() / 2]
                    } else {
                        &body[..]
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(sent);
                }
                None => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    endpoint
}

fn cache(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flyp-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_model_id_downloads_into_a_loadable_folder_with_progress_then_comes_from_the_cache() {
    let endpoint = fake_hub(Mode::Serve, 4);
    let cache = cache("ok");
    let mut last: Vec<hub::Progress> = Vec::new();
    let dir = hub::download(
        &endpoint,
        "test/tiny-a",
        &cache,
        &mut |p| {
            if last.last().is_some_and(|l| l.file == p.file) {
                last.pop();
            }
            last.push(p.clone());
        },
        None,
    )
    .expect("download");
    assert_eq!(dir, cache.join("test--tiny-a"));
    // Every fixture file arrived byte for byte; the last progress of each is its full size.
    let served = ["config.json", "model.safetensors", "tokenizer.json"];
    for file in served {
        let want = std::fs::read(fixtures().join("tiny-a").join(file)).expect("fixture");
        assert_eq!(
            std::fs::read(dir.join(file)).expect("downloaded"),
            want,
            "{file}"
        );
        let p = last.iter().find(|p| p.file == file).expect("progress");
        assert_eq!(
            (p.done, p.total),
            (want.len() as u64, Some(want.len() as u64))
        );
    }
    let device = flyp::ComputeDevice::flex();
    flyp::Clip::load(&dir, &device).expect("the downloaded folder loads");
    // The fake Hub has answered its 4 requests and is gone: a second call uses the cache.
    let again =
        hub::download(&endpoint, "test/tiny-a", &cache, &mut |_| {}, None).expect("from the cache");
    assert_eq!(again, dir);
}

#[test]
fn offline_unknown_and_broken_downloads_say_so_in_one_line_and_leave_no_model() {
    // Nobody listens on this port: what being offline looks like.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cache_dir = cache("fail");
    let fail = |endpoint: &str, id: &str| {
        hub::download(endpoint, id, &cache_dir, &mut |_| {}, None)
            .unwrap_err()
            .to_string()
    };
    let offline = fail(&format!("http://127.0.0.1:{port}"), "test/tiny-a");
    assert!(
        offline.contains("cannot reach") && offline.contains("offline?"),
        "{offline}"
    );
    assert!(!offline.contains('\n'), "{offline}");
    let unknown = fail(&fake_hub(Mode::Serve, 1), "test/no-such-model");
    assert!(
        unknown.contains("test/no-such-model") && unknown.contains("not found"),
        "{unknown}"
    );
    let broken = fail(&fake_hub(Mode::BreakSafetensors, 2), "test/tiny-a");
    assert!(broken.contains("model.safetensors"), "{broken}");
    let dir = hub::folder(&cache_dir, "test/tiny-a");
    assert!(
        !dir.join("model.safetensors").exists(),
        "a half file was kept"
    );
    assert!(flyp::Clip::load(&dir, &flyp::ComputeDevice::flex()).is_err());
    assert!(!hub::is_model_id("../etc/passwd") && !hub::is_model_id("a/b/c"));
    assert!(hub::is_model_id("openai/clip-vit-base-patch32"));
}
