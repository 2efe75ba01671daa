//! The sample store on the native host: a local directory with the seed's layout
//! (`samples/drums/kick.wav`, `recordings/{sessionId}/{sampleId}.wav`).

use std::path::{Path, PathBuf};

/// A blob directory. Keys are relative paths of safe segments only.
#[derive(Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid sample path")]
pub struct BadKey;

impl Blobs {
    pub fn new(root: PathBuf) -> std::io::Result<Blobs> {
        std::fs::create_dir_all(root.join("samples"))?;
        std::fs::create_dir_all(root.join("recordings"))?;
        Ok(Blobs { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to a path, refusing anything that could leave the directory.
    fn path(&self, key: &str) -> Result<PathBuf, BadKey> {
        let ok = !key.is_empty()
            && key.len() <= 512
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !ok {
            return Err(BadKey);
        }
        Ok(self.root.join(key))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BadKey> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(b)),
            Err(_) => Ok(None),
        }
    }

    /// Writes a blob atomically (temp file, fsync, rename).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            use std::io::Write;
            let dir = path.parent().expect("keys have a parent");
            std::fs::create_dir_all(dir)?;
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })
        .await?
    }
}

/// The blob key of a URL path under `/api/samples/`: recordings keep their own prefix, and
/// everything else is a built-in sample under `samples/`.
pub fn key_for_url_path(path: &str) -> String {
    if path.starts_with("recordings/") || path.starts_with("samples/") {
        path.to_string()
    } else {
        format!("samples/{path}")
    }
}

pub fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        let b = Blobs {
            root: PathBuf::from("/tmp/x"),
        };
        for bad in [
            "",
            "../etc/passwd",
            "a//b",
            "a/../b",
            "/abs",
            "a/./b",
            "a b",
            "a\\b",
        ] {
            assert!(b.path(bad).is_err(), "{bad:?}");
        }
        assert!(b.path("samples/drums/kick.wav").is_ok());
        assert_eq!(key_for_url_path("drums/kick.wav"), "samples/drums/kick.wav");
        assert_eq!(key_for_url_path("recordings/a/b.wav"), "recordings/a/b.wav");
    }
}
