//! A small HTTPS/1.1 client for tests and benchmarks: talks to the API server with the
//! client certificate of a kubeconfig, for requests stock kubectl cannot make (stale
//! resourceVersions raced in parallel, raw watches, a thousand watchers); and a private
//! containerd for the tests that run containers ([`containerd`]).

pub mod containerd;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Where and how to reach the API server.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    tls: TlsConnector,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("response body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn b64(v: &Value, field: &str) -> Result<Vec<u8>> {
    let s = v[field].as_str().ok_or_else(|| anyhow!("kubeconfig has no {field}"))?;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

impl Client {
    /// Reads the first cluster and user of a kubeconfig with embedded certificate data.
    pub fn from_kubeconfig(path: &Path) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: Value = serde_saphyr::from_str(&text).context("parsing the kubeconfig")?;
        let cluster = &cfg["clusters"][0]["cluster"];
        let user = &cfg["users"][0]["user"];
        let server = cluster["server"].as_str().ok_or_else(|| anyhow!("kubeconfig has no server"))?;
        let hostport = server.strip_prefix("https://").ok_or_else(|| anyhow!("server {server} is not https"))?;
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| anyhow!("server {server} has no port"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&b64(cluster, "certificate-authority-data")?) {
            roots.add(cert?)?;
        }
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&b64(user, "client-certificate-data")?).collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(&b64(user, "client-key-data")?)?;
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_client_auth_cert(certs, key)?;
        Ok(Client { host: host.trim_matches(['[', ']']).to_string(), port: port.parse()?, tls: TlsConnector::from(Arc::new(config)) })
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await.context("connecting to the API server")?;
        let name = ServerName::try_from(self.host.clone())?;
        Ok(self.tls.connect(name, tcp).await.context("TLS handshake")?)
    }

    fn head(&self, method: &str, path: &str, content_type: Option<&str>, body_len: usize, accept: &str) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: ironkube-testkit/0.1\r\nAccept: {accept}\r\nConnection: close\r\n", self.host, self.port);
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {body_len}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    /// Sends one request and reads the whole response.
    pub async fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Result<Response> {
        self.request_accepting(method, path, content_type, "application/json", body).await
    }

    /// Sends one request with the given `Accept` header and reads the whole response.
    pub async fn request_accepting(&self, method: &str, path: &str, content_type: Option<&str>, accept: &str, body: &[u8]) -> Result<Response> {
        let mut stream = self.connect().await?;
        let head = self.head(method, path, content_type.or((!body.is_empty()).then_some("application/json")), body.len(), accept);
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).await?;
        let mut body = Vec::new();
        if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
            while let Some(chunk) = read_chunk(&mut reader).await? {
                body.extend_from_slice(&chunk);
            }
        } else {
            reader.read_to_end(&mut body).await?;
        }
        Ok(Response { status, headers, body })
    }

    pub async fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, None, &[]).await
    }

    /// Starts a watch (`path` includes `watch=true`); events arrive line by line.
    pub async fn watch(&self, path: &str) -> Result<Watch> {
        let mut stream = self.connect().await?;
        stream.write_all(self.head("GET", path, None, 0, "application/json").as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).await?;
        let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        Ok(Watch { status, reader, chunked, pending: Vec::new() })
    }
}

async fn read_head(reader: &mut BufReader<TlsStream<TcpStream>>) -> Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad status line {line:?}"))?.parse()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

async fn read_chunk(reader: &mut BufReader<TlsStream<TcpStream>>) -> Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).context("chunk size")?;
    if size == 0 {
        return Ok(None);
    }
    let mut chunk = vec![0; size];
    reader.read_exact(&mut chunk).await?;
    let mut crlf = [0u8; 2];
    reader.read_exact(&mut crlf).await?;
    Ok(Some(chunk))
}

/// An open watch.
pub struct Watch {
    pub status: u16,
    reader: BufReader<TlsStream<TcpStream>>,
    chunked: bool,
    pending: Vec<u8>,
}

impl Watch {
    /// The next event (`{"type":..., "object":...}`), or `None` when the server ends the watch.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(serde_json::from_slice(&line)?));
            }
            let more = if self.chunked {
                read_chunk(&mut self.reader).await?
            } else {
                let mut buf = vec![0; 8192];
                let n = self.reader.read(&mut buf).await?;
                (n > 0).then(|| {
                    buf.truncate(n);
                    buf
                })
            };
            match more {
                Some(bytes) => self.pending.extend_from_slice(&bytes),
                None if self.pending.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                None => bail!("watch ended mid-event: {}", String::from_utf8_lossy(&self.pending)),
            }
        }
    }
}
