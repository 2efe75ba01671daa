//! The sampled-instrument library (made by `cargo xtask samples`, see crates/samples) installed
//! into the sample store, so it is served like every other sample at
//! `/api/samples/<instrument id>/<file>`.
//!
//! It comes from `--library DIR`, or, when this binary was built with the `embed-samples`
//! feature (`cargo xtask run` and `dist`), from the binary itself: the binary alone plays every
//! instrument. A store whose `samples/STAMP` already matches is left alone; otherwise every file
//! is written (each whole: aside, then renamed) and the stamp last, so a crash halfway means the
//! next start finishes the job.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Where a library comes from.
#[derive(Clone, Debug)]
pub enum Library {
    Dir(PathBuf),
    Embedded,
}

impl Library {
    /// `--library` if given, else the embedded one if this binary has it.
    pub fn choose(dir: Option<PathBuf>) -> Option<Library> {
        match dir {
            Some(d) => Some(Library::Dir(d)),
            None if embedded::has_library() => Some(Library::Embedded),
            None => None,
        }
    }

    /// Every file as (path relative to the library, bytes).
    fn files(&self) -> std::io::Result<Vec<(String, Cow<'static, [u8]>)>> {
        match self {
            Library::Embedded => Ok(embedded::files()),
            Library::Dir(root) => {
                let mut out = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(d) = dirs.pop() {
                    for e in std::fs::read_dir(&d)? {
                        let p = e?.path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            let rel = p
                                .strip_prefix(root)
                                .expect("under root")
                                .to_string_lossy()
                                .replace('\\', "/");
                            out.push((rel, Cow::Owned(std::fs::read(&p)?)));
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    fn stamp(&self) -> Option<Vec<u8>> {
        match self {
            Library::Embedded => embedded::get("STAMP").map(|c| c.into_owned()),
            Library::Dir(root) => std::fs::read(root.join("STAMP")).ok(),
        }
    }
}

/// Installs `library` into `<blobs>/samples/` unless the same one is there already. Returns how
/// many files were written.
pub fn install(library: &Library, blobs_root: &Path) -> anyhow::Result<usize> {
    let Some(stamp) = library.stamp() else {
        anyhow::bail!(
            "the instrument library has no STAMP file (prepare it with `cargo xtask samples`)"
        );
    };
    let samples = blobs_root.join("samples");
    if std::fs::read(samples.join("STAMP")).ok().as_deref() == Some(stamp.as_slice()) {
        return Ok(0);
    }
    let mut n = 0;
    for (rel, bytes) in library.files()? {
        if rel == "STAMP" || rel.ends_with(".part") {
            continue;
        }
        let key = format!("samples/{rel}");
        if !keyboardia_core::api::blob_key_ok(&key) {
            anyhow::bail!("the instrument library has a file with an unusable name: {rel}");
        }
        write_whole(&blobs_root.join(&key), &bytes)?;
        n += 1;
    }
    write_whole(&samples.join("STAMP"), &stamp)?;
    Ok(n)
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = PathBuf::from(format!("{}.part", path.display()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(feature = "embed-samples")]
mod embedded {
    use std::borrow::Cow;

    #[derive(rust_embed::RustEmbed)]
    #[folder = "../../target/sample-library"]
    struct Lib;

    pub fn has_library() -> bool {
        Lib::get("STAMP").is_some()
    }

    pub fn get(rel: &str) -> Option<Cow<'static, [u8]>> {
        Lib::get(rel).map(|f| f.data)
    }

    pub fn files() -> Vec<(String, Cow<'static, [u8]>)> {
        Lib::iter()
            .filter_map(|name| Lib::get(&name).map(|f| (name.into_owned(), f.data)))
            .collect()
    }
}

#[cfg(not(feature = "embed-samples"))]
mod embedded {
    use std::borrow::Cow;

    pub fn has_library() -> bool {
        false
    }

    pub fn get(_rel: &str) -> Option<Cow<'static, [u8]>> {
        None
    }

    pub fn files() -> Vec<(String, Cow<'static, [u8]>)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_and_again_when_the_stamp_changes() {
        let tmp = std::env::temp_dir().join(format!("kb-lib-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let lib = tmp.join("lib");
        std::fs::create_dir_all(lib.join("sampled/piano")).unwrap();
        std::fs::write(lib.join("STAMP"), "recipe 1").unwrap();
        std::fs::write(lib.join("sampled/piano/manifest.json"), "{}").unwrap();
        std::fs::write(lib.join("sampled/piano/060-0.flac"), "fLaC").unwrap();
        let blobs = tmp.join("blobs");
        let l = Library::Dir(lib.clone());
        assert_eq!(install(&l, &blobs).unwrap(), 2);
        assert_eq!(
            std::fs::read(blobs.join("samples/sampled/piano/060-0.flac")).unwrap(),
            b"fLaC"
        );
        assert_eq!(install(&l, &blobs).unwrap(), 0, "same stamp: nothing to do");
        std::fs::write(lib.join("STAMP"), "recipe 2").unwrap();
        assert_eq!(install(&l, &blobs).unwrap(), 2, "a new library replaces it");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
