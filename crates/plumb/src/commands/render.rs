//! `plumb kustomize build` and `plumb helm template`.

use crate::cli::{HelmCommand, KustomizeCommand};
use std::io::Write;
use std::process::ExitCode;

pub fn kustomize(command: KustomizeCommand) -> anyhow::Result<ExitCode> {
    let KustomizeCommand::Build { dir } = command;
    let objects = plumb_kustomize::build(&dir, &dir, &plumb_kustomize::Options::default())?;
    std::io::stdout().write_all(plumb_kustomize::to_yaml(&objects).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn helm(command: HelmCommand) -> anyhow::Result<ExitCode> {
    let HelmCommand::Template { args } = command;
    let cwd = std::env::current_dir()?;
    match plumb_helm::cli::template(&args, &cwd) {
        Ok(output) => {
            std::io::stdout().write_all(output.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            // Helm's own wording, so scripts written against helm keep working.
            eprintln!("Error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
