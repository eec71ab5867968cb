//! A loopback Helm chart repository: charts packed as `helm package` packs them, served with
//! an index over HTTP on an ephemeral port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn podinfo_chart() -> PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/podinfo/charts/podinfo");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared/corpus/podinfo/charts/podinfo")
    }
}

/// The chart directory packed as `helm package` does: everything under `<name>/`.
pub fn package(dir: &Path, name: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    builder.append_dir_all(name, dir).expect("pack the chart");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// Serves `files` (path → body) over HTTP/1.1 on an ephemeral loopback port.
pub fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut stream = stream;
                match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(body);
                    }
                    None => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `version:` of a chart directory's Chart.yaml.
pub fn chart_version(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("Chart.yaml"))
        .expect("Chart.yaml")
        .lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("chart version")
}

/// A repository serving each (name, version, archive) at `/charts/<name>-<version>.tgz`, with
/// its index; returns the repository URL.
pub fn repository(charts: Vec<(String, String, Vec<u8>)>) -> String {
    let mut index = String::from("apiVersion: v1\nentries:\n");
    let mut files = Vec::new();
    for (name, version, archive) in charts {
        index.push_str(&format!(
            "  {name}:\n  - name: {name}\n    version: {version}\n    urls: [charts/{name}-{version}.tgz]\n    digest: {}\n",
            sha256(&archive)
        ));
        files.push((format!("/charts/{name}-{version}.tgz"), archive));
    }
    files.push(("/index.yaml".into(), index.into_bytes()));
    serve(files)
}
