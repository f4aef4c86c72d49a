//! Every question-answering subcommand shows an example in its `--help`
//! and has a section in docs/cli.md.

use std::process::Command;

use legate_tests::{operator, workspace};

#[test]
fn explain_routes_and_import_show_examples_and_are_documented() {
    let binary = operator::binary().unwrap_or_else(|e| panic!("{e}"));
    let docs = std::fs::read_to_string(workspace::root().join("docs/cli.md")).expect("docs/cli.md");
    for command in ["explain", "routes", "import"] {
        let out = Command::new(&binary)
            .args([command, "--help"])
            .output()
            .unwrap_or_else(|e| panic!("running legate {command} --help: {e}"));
        assert!(out.status.success(), "legate {command} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Examples:"),
            "legate {command} --help has examples:\n{help}"
        );
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("legate {command} "))),
            "an example runs legate {command}:\n{help}"
        );
        assert!(
            docs.contains(&format!("\n## legate {command}\n")),
            "docs/cli.md documents legate {command}"
        );
    }
}
