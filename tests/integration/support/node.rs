//! Node.js for the tests that run JavaScript: the example client, the JS
//! client library's own tests and the demo page's browser test.

use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Runs `program --version`; `None` when it is not installed.
fn version_of(program: &str) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Checks for Node.js >= 20 and npm, and installs `dir`'s locked
/// dependencies unless the installed ones match its `package-lock.json`
/// and the files of `local` (packages it installs from this repo by
/// `file:`, which npm copies: a change to them needs a new install).
/// Idempotent; a file lock keeps concurrent test runs from installing into
/// the same `node_modules` at once.
pub fn npm_ci(dir: &Path, local: &[&Path]) {
    let node = version_of("node").unwrap_or_else(|| {
        panic!("the JavaScript tests need Node.js >= 20 on PATH (`node` not found)")
    });
    let major: u32 = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "the JavaScript tests need Node.js >= 20, found {node}"
    );
    version_of("npm").unwrap_or_else(|| {
        panic!("the JavaScript tests need npm on PATH (`npm` not found; it comes with Node.js)")
    });

    let lock_path = dir.join(".npm-install.lock");
    let lock = File::create(&lock_path).expect("create the npm install lock file");
    lock.lock().expect("take the npm install lock");

    let lockfile = std::fs::read(dir.join("package-lock.json")).expect("read package-lock.json");
    let mut hash = Sha256::new();
    hash.update(&lockfile);
    for package in local {
        hash_tree(&mut hash, package);
    }
    let want = format!("{:x}", hash.finalize());
    let stamp = dir.join("node_modules/.ssp-lock-sha256");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have.trim() == want) {
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("run npm ci");
    assert!(
        out.status.success(),
        "`npm ci` in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, want).expect("write the npm install stamp");
}

/// Feeds the paths and contents of the files under `dir` (but
/// `node_modules`), in a fixed order, into `hash`.
fn hash_tree(hash: &mut Sha256, dir: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path
            .file_name()
            .is_some_and(|n| n == "node_modules" || n == ".npm-install.lock")
        {
            continue;
        }
        if path.is_dir() {
            hash_tree(hash, &path);
        } else {
            hash.update(path.to_string_lossy().as_bytes());
            hash.update(std::fs::read(&path).unwrap_or_default());
        }
    }
}
