//! A loopback OCI registry speaking the distribution API: `/v2/` tags, manifests and blobs
//! behind a Bearer token challenge that `/token` answers only for [`USER`] and [`PASSWORD`].

use super::charts::sha256;
use base64::Engine as _;
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const CHART_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const USER: &str = "robot";
pub const PASSWORD: &str = "s3cret";
pub const TOKEN: &str = "tok-8f2e";

/// One canned answer.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send `Content-Length` (otherwise the body ends when the connection closes).
    pub length: bool,
}

impl Answer {
    pub fn ok(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body,
            length: true,
        }
    }
}

/// A registry on an ephemeral loopback port; every `/v2/` request needs the bearer token,
/// which `/token` gives only for the right basic credentials. Returns the address and the
/// log of request targets.
pub fn registry(routes: HashMap<String, Answer>) -> (String, Log) {
    shared_registry(Arc::new(Mutex::new(routes)))
}

/// Routes a test may change while the registry runs (a tag pushed again, a new tag).
pub type Routes = Arc<Mutex<HashMap<String, Answer>>>;

/// The request targets a registry saw.
pub type Log = Arc<Mutex<Vec<String>>>;

/// [`registry`] over routes the test keeps a handle on.
pub fn shared_registry(routes: Routes) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (routes, shared_log, realm) = (routes, log.clone(), format!("http://{address}/token"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (routes, log, realm) = (routes.clone(), shared_log.clone(), realm.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut authorization = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = value.trim().to_string();
                    }
                }
                let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().expect("log").push(target.clone());
                let basic = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
                );
                let answer = if target.starts_with("/token") {
                    if authorization == basic {
                        Answer::ok(
                            json!({"token": TOKEN, "expires_in": 300})
                                .to_string()
                                .into_bytes(),
                        )
                    } else {
                        Answer {
                            status: 401,
                            ..Answer::ok(b"{}".to_vec())
                        }
                    }
                } else if authorization != format!("Bearer {TOKEN}") {
                    let name = target
                        .trim_start_matches("/v2/")
                        .split("/tags/")
                        .next()
                        .unwrap_or_default()
                        .split("/manifests/")
                        .next()
                        .unwrap_or_default()
                        .split("/blobs/")
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    Answer {
                        status: 401,
                        headers: vec![(
                            "WWW-Authenticate".into(),
                            format!(
                                "Bearer realm=\"{realm}\",service=\"plumb-test\",scope=\"repository:{name}:pull\""
                            ),
                        )],
                        ..Answer::ok(br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec())
                    }
                } else {
                    let found = routes.lock().expect("routes").get(&target).cloned();
                    found.unwrap_or(Answer {
                        status: 404,
                        ..Answer::ok(br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#.to_vec())
                    })
                };
                let mut stream = stream;
                let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
                if answer.length {
                    head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
                }
                for (name, value) in &answer.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&answer.body);
            });
        }
    });
    (address, log)
}

pub fn manifest(layer_type: &str, config_type: &str, digest: &str, size: usize) -> Answer {
    Answer::ok(
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": format!("sha256:{}", sha256(b"{}")), "size": 2},
            "layers": [{"mediaType": layer_type, "digest": digest, "size": size}]})
        .to_string()
        .into_bytes(),
    )
}

pub fn tags(name: &str, tags: &[&str], next: Option<&str>) -> Answer {
    let mut answer = Answer::ok(json!({"name": name, "tags": tags}).to_string().into_bytes());
    if let Some(next) = next {
        answer
            .headers
            .push(("Link".into(), format!("<{next}>; rel=\"next\"")));
    }
    answer
}
