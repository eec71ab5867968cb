//! `cargo run --example kbuild -- DIR [ROOT]`: print what `kustomize build DIR` would.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: kbuild DIR [ROOT]");
        std::process::exit(2);
    };
    let root = args.get(2).unwrap_or(dir);
    match plumb_kustomize::build(
        std::path::Path::new(root),
        std::path::Path::new(dir),
        &plumb_kustomize::Options::default(),
    ) {
        Ok(objs) => print!("{}", plumb_kustomize::to_yaml(&objs)),
        Err(e) => {
            eprintln!("error: {}", e.chain());
            std::process::exit(1);
        }
    }
}
