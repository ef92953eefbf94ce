//! The compiler's messages for the mistakes a new user makes first: a
//! record type without serde's derives, `print()` of a type without `Show`,
//! and `#[derive(Show)]` over a field without it. Each program in
//! `tests/compile-fail/` is checked as a user's own crate depending on
//! `ember`; it must fail, and the error must carry ember's explanation (what
//! rustc writes around it varies by version, so only ember's words are
//! compared). The programs in `tests/compile-pass/` are what the docs
//! promise works, e.g. records in a crate that depends on `ember` alone.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

/// `cargo check` of `tests/{program}` as the `main.rs` of a fresh crate that
/// depends on `ember` (and on serde when `with_serde`): whether it compiled,
/// and its stderr.
fn cargo_check(program: &str, with_serde: bool) -> (bool, String) {
    let ember = manifest_dir();
    let workspace = ember.join("../..");
    let dir = tempfile::tempdir().unwrap();
    let serde = if with_serde {
        "serde = { version = \"1\", features = [\"derive\"] }\n"
    } else {
        ""
    };
    let manifest = format!(
        "[package]\nname = \"user-program\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nember-streaming = {{ path = {:?}, default-features = false }}\n{serde}\n\
         [workspace]\n",
        ember.display().to_string()
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    // The workspace's versions, so nothing new is fetched.
    std::fs::copy(workspace.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let source = std::fs::read_to_string(ember.join("tests").join(program)).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), source).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--offline"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", workspace.join("target/compile-fail"))
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stderr)
}

/// The stderr of `tests/compile-fail/{program}`, which must not compile.
fn check(program: &str) -> String {
    let (compiled, stderr) = cargo_check(&format!("compile-fail/{program}"), true);
    assert!(!compiled, "{program} compiled:\n{stderr}");
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

#[test]
fn a_derived_show_names_the_field_type_without_show() {
    let stderr = check("derive_show_field_without_show.rs");
    for expected in [
        "`Latency` cannot be printed by `print()`: it does not implement `ember::Show`",
        "add `#[derive(Show)]` to the type",
        "wrap a `Display` type in `ember::ShowDisplay`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn records_need_no_serde_line_of_their_own() {
    let (compiled, stderr) = cargo_check("compile-pass/ember_serde_only.rs", false);
    assert!(compiled, "ember_serde_only.rs did not compile:\n{stderr}");
}
