//! The core's modules are layered: values (time, clock, hash, show, error)
//! → the runtime → scope → graph and operators → sources and sinks → the
//! context. No module may import another that imports it back, directly or
//! through others. This test reads every module's `crate::…` and `super::…`
//! paths (names re-exported at the crate root count as their defining
//! module) and fails naming each import that closes a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of the crate, by path (`dstream::fuse`; the root is ``).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The code of a file without `//` comments (docs name paths too).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `a::b::c` paths (and the names of `{a, b::c}` groups) after each
/// occurrence of `prefix` in `text`.
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (i, _) in text.match_indices(prefix) {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|n| n.trim().to_string()));
        } else {
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The module a path names: the longest module prefix, or for a name the
/// crate root re-exports, the module it comes from.
fn resolve(
    path: &str,
    modules: &BTreeMap<String, PathBuf>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let first = parts.first()?;
    if !modules.contains_key(*first) {
        return reexports.get(*first).cloned();
    }
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    // `pub use module::{A, B}` and `pub use module::A` at the root.
    let mut reexports = BTreeMap::new();
    let root = code(&modules[""]);
    for line in root.split(';') {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                reexports.insert(name.to_string(), module.trim().to_string());
            }
        }
    }

    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in modules.iter().filter(|(m, _)| !m.is_empty()) {
        let text = code(file);
        // `super` of `a::b` (a file) is `a`; of `a` (a folder's mod.rs) the root.
        let mut parent: Vec<&str> = module.split("::").collect();
        parent.pop();
        let mut targets = BTreeSet::new();
        for path in paths_after(&text, "crate::") {
            targets.extend(resolve(&path, &modules, &reexports));
        }
        for path in paths_after(&text, "super::") {
            let full = parent
                .iter()
                .copied()
                .chain(path.split("::"))
                .collect::<Vec<_>>()
                .join("::");
            targets.extend(resolve(&full, &modules, &reexports));
        }
        targets.retain(|t| !t.is_empty() && t != module);
        imports.insert(module.clone(), targets);
    }

    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in imports.get(&m).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        false
    };
    let loops: Vec<String> = imports
        .iter()
        .flat_map(|(m, ts)| ts.iter().map(move |t| (m, t)))
        .filter(|(m, t)| reaches(t, m))
        .map(|(m, t)| format!("{m} -> {t}"))
        .collect();
    assert!(
        imports.len() > 20 && imports.values().map(BTreeSet::len).sum::<usize>() > 60,
        "the scan found too little to be right: {imports:#?}"
    );
    assert!(
        loops.is_empty(),
        "imports that close a loop (each module imports, directly or through others, one that imports it back):\n{}",
        loops.join("\n")
    );
}
