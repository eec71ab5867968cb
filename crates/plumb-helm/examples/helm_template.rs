//! `cargo run --example helm_template -- ARGS...`: runs `helm template ARGS` in the current
//! directory and prints what helm would print.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().unwrap_or_default();
    let out = plumb_helm::cli::run(&args, &cwd, &plumb_helm::cli::CliConfig::default());
    print!("{}", out.stdout);
    if let Some(e) = out.error {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
