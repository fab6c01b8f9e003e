//! The local stack's modules form no import cycle, and no module imports its parent: each room
//! (`aws/`, `run/`, `tools/`) and each split module reads only downwards or sideways, so the tree
//! shows how the code depends on itself. Read from the sources: every `crate::…` and `super::…`
//! path outside comments and test modules, resolved to the module that holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`aws::s3::post`; `""` for the crate root) → its source.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            modules(&path, &[prefix, &[name]].concat(), out);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "main" {
            let module = match name.as_str() {
                "lib" | "mod" => prefix.to_vec(),
                _ => [prefix, &[name]].concat(),
            };
            out.insert(module.join("::"), std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The modules `source` (of `module`, a `mod.rs` or `lib.rs` when `is_dir`) refers to.
fn references(module: &str, source: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let path = regex::Regex::new(r"\b(crate|super)((?:::\w+)+)").unwrap();
    let mut found = BTreeSet::new();
    for capture in path.captures_iter(&code) {
        let base = if &capture[1] == "crate" { "" } else { parent };
        let mut parts: Vec<&str> = base.split("::").filter(|p| !p.is_empty()).collect();
        parts.extend(capture[2].split("::").filter(|p| !p.is_empty()));
        // The longest prefix that is a module holds the item.
        let target = (0..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| known.contains_key(m));
        if let Some(target) = target.filter(|t| t != module && !t.starts_with(&format!("{module}::"))) {
            found.insert(target);
        }
    }
    found
}

#[test]
fn local_src_has_no_import_cycle_and_no_module_imports_its_parent() {
    let mut known = BTreeMap::new();
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut known);
    assert!(known.contains_key("aws::apigw_ws::connections"), "modules found: {:?}", known.keys());
    let graph: BTreeMap<&str, BTreeSet<String>> =
        known.iter().filter(|(m, _)| !m.is_empty()).map(|(m, s)| (m.as_str(), references(m, s, &known))).collect();

    let parents: Vec<String> = graph
        .iter()
        .filter_map(|(m, refs)| {
            m.rsplit_once("::").filter(|(p, _)| refs.contains(*p)).map(|(p, _)| format!("{m} -> {p}"))
        })
        .collect();
    assert!(parents.is_empty(), "modules importing their parent: {parents:?}");

    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            return Some(path[at..].iter().chain([&m]).map(|s| s.to_string()).collect());
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "import cycle: {}", cycle.unwrap_or_default().join(" -> "));
    }
}

#[test]
fn the_checker_sees_a_cycle_and_a_parent_import() {
    let known: BTreeMap<String, String> = [
        ("a", "use crate::b::X;"),
        ("b", "pub fn f() { crate::a::g() }"),
        ("a::child", "use super::Y; // a comment naming crate::b"),
        ("", ""),
    ]
    .into_iter()
    .map(|(m, s)| (m.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(references("a", &known["a"], &known), BTreeSet::from(["b".to_owned()]));
    assert_eq!(references("b", &known["b"], &known), BTreeSet::from(["a".to_owned()]));
    assert_eq!(references("a::child", &known["a::child"], &known), BTreeSet::from(["a".to_owned()]));
}
