//! A smart-HTTP Git server for tests: `git http-backend` run as CGI behind a
//! tiny HTTP/1.1 front end on 127.0.0.1 that checks basic auth.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;

/// Which credentials the server accepts.
#[derive(Clone)]
pub enum Auth {
    /// Anonymous access.
    Open,
    /// Exactly this user and password.
    Basic { username: String, password: String },
    /// Any user name with this password (how token auth works on Git hosts).
    Password(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

pub struct GitHttpServer {
    pub base_url: String,
    /// Requests that reached `git http-backend` (authenticated ones).
    pub served: Arc<AtomicUsize>,
    /// Requests answered with 401.
    pub rejected: Arc<AtomicUsize>,
}

impl GitHttpServer {
    /// Serve every repository under `root` at `http://127.0.0.1:<port>/<path>`.
    pub fn start(root: PathBuf, auth: Auth) -> Self {
        Self::start_with(root, auth, None)
    }

    /// Like [`Self::start`], over TLS with `tls` (`https://127.0.0.1:<port>/<path>`).
    pub fn start_tls(root: PathBuf, auth: Auth, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(root, auth, Some(tls))
    }

    fn start_with(root: PathBuf, auth: Auth, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let rejected = Arc::new(AtomicUsize::new(0));
        let (s, r) = (Arc::clone(&served), Arc::clone(&rejected));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, auth, s, r) =
                    (root.clone(), auth.clone(), Arc::clone(&s), Arc::clone(&r));
                let tls = tls.clone();
                std::thread::spawn(move || {
                    // A client that hangs up mid-request only ends its own connection.
                    let _ = match tls {
                        Some(config) => match rustls::ServerConnection::new(config) {
                            Ok(conn) => {
                                handle(rustls::StreamOwned::new(conn, stream), &root, &auth, &s, &r)
                            }
                            Err(_) => Ok(()),
                        },
                        None => handle(stream, &root, &auth, &s, &r),
                    };
                });
            }
        });
        GitHttpServer {
            base_url,
            served,
            rejected,
        }
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request<S: Read>(reader: &mut BufReader<S>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = request.header("content-length") {
        let mut body = vec![0; len.parse().unwrap_or(0)];
        reader.read_exact(&mut body)?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(Some(request))
}

fn authorized(request: &Request, auth: &Auth) -> Option<String> {
    let decode = || -> Option<(String, String)> {
        let value = request.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        Some((user.to_owned(), pass.to_owned()))
    };
    match auth {
        Auth::Open => Some(String::new()),
        Auth::Basic { username, password } => decode()
            .filter(|(u, p)| u == username && p == password)
            .map(|(u, _)| u),
        Auth::Password(password) => decode().filter(|(_, p)| p == password).map(|(u, _)| u),
        Auth::Bearer(token) => request
            .header("authorization")?
            .strip_prefix("Bearer ")
            .filter(|t| t == token)
            .map(|_| "bearer".to_owned()),
    }
}

fn handle<S: Read + Write>(
    stream: S,
    root: &PathBuf,
    auth: &Auth,
    served: &AtomicUsize,
    rejected: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader)? {
        let stream = reader.get_mut();
        let Some(user) = authorized(&request, auth) else {
            rejected.fetch_add(1, Ordering::SeqCst);
            stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"plumb-test\"\r\nContent-Length: 0\r\n\r\n",
            )?;
            continue;
        };
        served.fetch_add(1, Ordering::SeqCst);
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        let mut child = Command::new("git")
            .arg("http-backend")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &request.method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env(
                "CONTENT_TYPE",
                request.header("content-type").unwrap_or_default(),
            )
            .env("CONTENT_LENGTH", request.body.len().to_string())
            .env(
                "HTTP_CONTENT_ENCODING",
                request.header("content-encoding").unwrap_or_default(),
            )
            .env(
                "GIT_PROTOCOL",
                request.header("git-protocol").unwrap_or_default(),
            )
            .env("REMOTE_USER", user)
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        let body = request.body;
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let output = child.wait_with_output()?;
        let _ = writer.join();
        let out = output.stdout;
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| {
                out.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, i + 2))
            })
            .unwrap_or((out.len(), out.len()));
        let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
        let body = &out[split.1..];
        let mut status = "200 OK".to_owned();
        let mut response = Vec::new();
        for line in head.lines() {
            match line.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
                Some(_) => {
                    response.extend_from_slice(line.as_bytes());
                    response.extend_from_slice(b"\r\n");
                }
                None => {}
            }
        }
        let mut message = format!("HTTP/1.1 {status}\r\n").into_bytes();
        message.extend_from_slice(&response);
        message.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        message.extend_from_slice(body);
        stream.write_all(&message)?;
        stream.flush()?;
    }
    Ok(())
}

/// A CA and a server certificate for 127.0.0.1 made with the `openssl` CLI; returns the
/// server config and the CA certificate's PEM.
pub fn tls_fixture(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=plumb-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    (Arc::new(config), std::fs::read(dir.join("ca.pem")).unwrap())
}
