//! The README's first example is `examples/telemetry.rs`, word for word, so
//! that what a newcomer copies is what runs.

#[test]
fn the_readme_example_is_the_telemetry_example() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```rust,no_run\nuse shmkit::spsc::{Receiver, Sender};")
        .expect("the README's first example")
        + "```rust,no_run\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let example = include_str!("../examples/telemetry.rs");
    let code: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(&readme[start..end], code);
}

/// The README's list of attach errors names every variant of `Error`.
#[test]
fn the_readme_names_every_error_variant() {
    let readme = include_str!("../README.md");
    let source = include_str!("../src/error.rs");
    let body = &source[source.find("pub enum Error {").unwrap()..];
    let body = &body[..body.find("\n}\n").unwrap()];
    let variants: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| l.split(|c: char| !c.is_alphanumeric()).next().unwrap())
        .collect();
    assert!(variants.len() >= 10, "{variants:?}");
    for v in variants {
        assert!(
            readme.contains(&format!("`{v}")),
            "the README does not name Error::{v}"
        );
    }
}
