//! README.md's installation steps as a reader runs them. Each step the package test runs is a
//! fenced `sh` block right after a `<!-- test: NAME -->` line; the test takes the block's
//! text as it is, so README cannot drift from what works.

/// README.md, as built into the tests.
const README: &str = include_str!("../../README.md");

/// The commands of README's block marked `<!-- test: NAME -->`, as written.
pub fn block(name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let mut lines = README.lines().skip_while(|line| line.trim() != marker);
    assert!(lines.next().is_some(), "README.md has no {marker}");
    assert_eq!(
        lines.next().map(str::trim),
        Some("```sh"),
        "in README.md, {marker} must come right before a ```sh block"
    );
    let mut text = String::new();
    for line in lines.take_while(|line| line.trim() != "```") {
        text.push_str(line);
        text.push('\n');
    }
    assert!(
        !text.trim().is_empty(),
        "README.md's {marker} block is empty"
    );
    text
}

/// The names of every marked block, in README's order.
pub fn names() -> Vec<&'static str> {
    README
        .lines()
        .filter_map(|line| line.trim().strip_prefix("<!-- test: "))
        .filter_map(|rest| rest.strip_suffix(" -->"))
        .collect()
}
