//! Writes the configuration reference (`docs/config/*.schema.json`, `docs/configuration.md`) from
//! the Settings types; with `--check` writes nothing and fails naming every stale file.

use std::process::ExitCode;

use axiom25_config_reference::{REGENERATE, generated_files, repository_root, stale_files};

fn main() -> ExitCode {
    let root = repository_root();
    match std::env::args().nth(1).as_deref() {
        Some("--check") => {
            let stale = stale_files(&root);
            if stale.is_empty() {
                return ExitCode::SUCCESS;
            }
            eprintln!("stale generated files (run `{REGENERATE}`): {}", stale.join(", "));
            ExitCode::FAILURE
        }
        None => {
            for (path, content) in generated_files() {
                let target = root.join(&path);
                if std::fs::read_to_string(&target).ok().as_deref() == Some(content.as_str()) {
                    continue;
                }
                let written = target
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&target, content));
                if let Err(error) = written {
                    eprintln!("{path}: {error}");
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {path}");
            }
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("{other}: unknown argument (the only one is --check)");
            ExitCode::from(2)
        }
    }
}
