//! The compiler's messages for the two mistakes a new user makes first: a
//! record type without serde's derives, and `print()` of a type without
//! `Show`. Each program in `tests/compile-fail/` is checked as a user's own
//! crate depending on `ember`; it must fail, and the error must carry
//! ember's explanation (what rustc writes around it varies by version, so
//! only ember's words are compared).

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

/// `cargo check` of `program` as the `main.rs` of a fresh crate; its stderr.
fn check(program: &str) -> String {
    let ember = manifest_dir();
    let workspace = ember.join("../..");
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[package]\nname = \"user-program\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nember = {{ path = {:?}, default-features = false }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        ember.display().to_string()
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    // The workspace's versions, so nothing new is fetched.
    std::fs::copy(workspace.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let source = std::fs::read_to_string(ember.join("tests/compile-fail").join(program)).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), source).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--offline"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", workspace.join("target/compile-fail"))
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{program} compiled:\n{stderr}");
    stderr
}

#[test]
fn a_record_type_without_serde_is_explained() {
    let stderr = check("record_without_serde.rs");
    for expected in [
        "`Click` cannot be a DStream record: records must be `Clone + Send + 'static` and \
         serde-serializable",
        "add `#[derive(Clone, serde::Serialize, serde::Deserialize)]` to your type",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn print_without_show_is_explained() {
    let stderr = check("print_without_show.rs");
    for expected in [
        "`Click` cannot be printed by `print()`: it does not implement `ember::Show`",
        "wrap a `Display` type in `ember::ShowDisplay`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
