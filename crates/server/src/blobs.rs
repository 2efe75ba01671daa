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

    /// An empty sample store gets the built-in kit (`samples/drums/kick.wav`, ...), rendered
    /// by the sound engine in the background on first start: the binary alone is enough.
    /// Each file appears whole (written aside, then renamed).
    pub fn render_kit_if_missing(&self) {
        if self.root.join("samples/drums/kick.wav").exists() {
            return;
        }
        let root = self.root.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for (key, wav) in keyboardia_audio::offline::kit(48_000.0) {
                let path = root.join(&key);
                let tmp = path.with_extension("wav.part");
                let written = path
                    .parent()
                    .map(std::fs::create_dir_all)
                    .unwrap_or(Ok(()))
                    .and_then(|()| std::fs::write(&tmp, wav))
                    .and_then(|()| std::fs::rename(&tmp, &path));
                if let Err(e) = written {
                    tracing::error!(error = %e, key, "could not write the built-in kit");
                    return;
                }
                n += 1;
            }
            tracing::info!(
                instruments = n,
                "rendered the built-in kit into the sample store"
            );
        });
    }

    /// Maps a key to a path, refusing anything that could leave the directory.
    fn path(&self, key: &str) -> Result<PathBuf, BadKey> {
        if !keyboardia_core::api::blob_key_ok(key) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        let b = Blobs {
            root: PathBuf::from("/tmp/x"),
        };
        for bad in ["", "../etc/passwd", "a/../b", "/abs"] {
            assert!(b.path(bad).is_err(), "{bad:?}");
        }
        assert!(b.path("samples/drums/kick.wav").is_ok());
    }
}
