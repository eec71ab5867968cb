//! `plumb kustomize build` and `plumb helm template`.

use crate::cli::{HelmCommand, KustomizeCommand};
use std::io::Write;
use std::process::ExitCode;

pub fn kustomize(command: KustomizeCommand) -> anyhow::Result<ExitCode> {
    let KustomizeCommand::Build { dir } = command;
    // Like `kustomize build`, bases may sit anywhere (`../base`); each kustomization's own files
    // stay confined to its directory by the load restrictor.
    match plumb_kustomize::build(
        std::path::Path::new("/"),
        &dir,
        &plumb_kustomize::Options::default(),
    ) {
        Ok(objects) => {
            std::io::stdout().write_all(plumb_kustomize::to_yaml(&objects).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("Error: {}", error.chain());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn helm(command: HelmCommand) -> anyhow::Result<ExitCode> {
    let HelmCommand::Template { args } = command;
    let cwd = std::env::current_dir()?;
    let output = plumb_helm::cli::run(&args, &cwd, &plumb_helm::cli::CliConfig::default());
    // `--debug` prints what rendered before the error, as helm does.
    std::io::stdout().write_all(output.stdout.as_bytes())?;
    match output.error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            // Helm's own wording, so scripts written against helm keep working.
            eprintln!("Error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
