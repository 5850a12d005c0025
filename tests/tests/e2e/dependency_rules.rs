//! The crate graph's rules, read from `cargo metadata`:
//! * no crate under `functions/` depends on another one (any kind: the
//!   queue contracts live in `shared/messages`);
//! * no crate under `shared/` depends on a function, nor — outside its
//!   tests — on anything under `infra/` (test helpers such as the
//!   simulator and `hubsync-testkit` are dev-dependencies only).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// `functions`, `shared`, `infra` or `tests`: the top folder of a path in
/// the workspace.
fn area(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    rel.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
}

#[test]
fn functions_and_shared_crates_keep_their_seams() {
    let m = metadata();
    let root = PathBuf::from(m["workspace_root"].as_str().unwrap());
    let mut violations = Vec::new();
    let mut checked = 0;
    for pkg in m["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap();
        let manifest = PathBuf::from(pkg["manifest_path"].as_str().unwrap());
        let Some(from) = area(&root, &manifest) else {
            continue;
        };
        for dep in pkg["dependencies"].as_array().unwrap() {
            let Some(path) = dep["path"].as_str() else {
                continue;
            };
            let Some(to) = area(&root, Path::new(path)) else {
                continue;
            };
            checked += 1;
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let dep_name = dep["name"].as_str().unwrap();
            let bad = match (from.as_str(), to.as_str()) {
                ("functions", "functions") => true,
                ("shared", "functions") => true,
                ("shared", "infra") => kind != "dev",
                _ => false,
            };
            if bad {
                violations.push(format!("{name} ({from}) → {dep_name} ({to}, {kind})"));
            }
        }
    }
    assert!(
        checked > 20,
        "the workspace's path dependencies were read ({checked})"
    );
    assert!(
        violations.is_empty(),
        "crate seams broken:\n  {}",
        violations.join("\n  ")
    );
}
