//! The web app's files, as `cargo xtask build-web` lays them out (see xtask/src/web.rs):
//! `index.html`, and `assets/` whose names carry a content hash, each with precompressed `.br`
//! and `.gz` variants.
//!
//! They come from `--web-dir` when given (development), else from the binary itself when it was
//! built with the `embed-web` feature (`cargo xtask run` and release builds), so the one binary
//! serves the app. The response picks the smallest variant the browser accepts
//! (`Accept-Encoding`), says so in `Content-Encoding` and `Vary`, and lets hashed files be cached
//! forever while `index.html` is revalidated on every visit.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Hashed files never change: a year, immutable.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page names the current hashed files: always revalidate it.
pub const REVALIDATE: &str = "no-cache";

/// Where the app's files come from.
#[derive(Clone, Debug)]
pub enum WebFiles {
    /// A build folder (`--web-dir`).
    Dir(PathBuf),
    /// Built into this binary (feature `embed-web`).
    Embedded,
    /// No app: a placeholder page.
    None,
}

impl WebFiles {
    /// `--web-dir` if given, else the embedded build if there is one.
    pub fn choose(dir: Option<PathBuf>) -> WebFiles {
        match dir {
            Some(d) => WebFiles::Dir(d),
            None if embedded::has_app() => WebFiles::Embedded,
            None => WebFiles::None,
        }
    }

    pub fn is_some(&self) -> bool {
        !matches!(self, WebFiles::None)
    }

    async fn read(&self, rel: &str) -> Option<Cow<'static, [u8]>> {
        match self {
            WebFiles::Dir(d) => tokio::fs::read(d.join(rel)).await.ok().map(Cow::Owned),
            WebFiles::Embedded => embedded::get(rel),
            WebFiles::None => None,
        }
    }

    /// The response for app path `rel` (no leading `/`): the file, or `index.html` for app
    /// routes such as `s/{id}`; `None` when there is no app at all.
    pub async fn respond(&self, rel: &str, request: &HeaderMap) -> Option<Response> {
        let safe = !rel.is_empty()
            && !rel
                .split('/')
                .any(|s| s.is_empty() || s == ".." || s.starts_with('.') || s.starts_with('_'))
            && !rel.ends_with(".br")
            && !rel.ends_with(".gz");
        if safe {
            if let Some(r) = self.file(rel, request).await {
                return Some(r);
            }
            // A missing hashed file is a 404, not the page (a stale page asking for an old
            // build's file must not get HTML as JavaScript).
            if rel.starts_with("assets/") {
                return Some(
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        "no such file in this build",
                    )
                        .into_response(),
                );
            }
        }
        self.file("index.html", request).await
    }

    async fn file(&self, rel: &str, request: &HeaderMap) -> Option<Response> {
        let accepts = accepted_encodings(request);
        let mut body = None;
        let mut encoding = None;
        for (enc, ext) in [("br", ".br"), ("gzip", ".gz")] {
            if accepts.contains(&enc) {
                if let Some(b) = self.read(&format!("{rel}{ext}")).await {
                    body = Some(b);
                    encoding = Some(enc);
                    break;
                }
            }
        }
        let body = match body {
            Some(b) => b,
            None => self.read(rel).await?,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type_for(Path::new(rel))),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if rel.starts_with("assets/") {
                IMMUTABLE
            } else {
                REVALIDATE
            }),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(enc) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
        }
        let body = match body {
            Cow::Borrowed(b) => axum::body::Body::from(b),
            Cow::Owned(v) => axum::body::Body::from(v),
        };
        Some((headers, body).into_response())
    }
}

/// The encodings a request accepts (`br`, `gzip`), ignoring those given `q=0`.
fn accepted_encodings(h: &HeaderMap) -> Vec<&'static str> {
    let Some(v) = h.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in v.split(',') {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = it.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        if refused {
            continue;
        }
        match name.as_str() {
            "br" => out.push("br"),
            "gzip" | "x-gzip" => out.push("gzip"),
            _ => {}
        }
    }
    out
}

pub fn content_type_for(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[cfg(feature = "embed-web")]
mod embedded {
    use std::borrow::Cow;

    #[derive(rust_embed::RustEmbed)]
    #[folder = "../../target/web-dist"]
    struct App;

    pub fn has_app() -> bool {
        App::get("index.html").is_some()
    }

    pub fn get(rel: &str) -> Option<Cow<'static, [u8]>> {
        App::get(rel).map(|f| f.data)
    }
}

#[cfg(not(feature = "embed-web"))]
mod embedded {
    use std::borrow::Cow;

    pub fn has_app() -> bool {
        false
    }

    pub fn get(_rel: &str) -> Option<Cow<'static, [u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_read_from_the_header() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br;q=0"),
        );
        assert_eq!(accepted_encodings(&h), vec!["gzip"]);
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.5"),
        );
        assert_eq!(accepted_encodings(&h), vec!["br", "gzip"]);
        assert!(accepted_encodings(&HeaderMap::new()).is_empty());
    }
}
