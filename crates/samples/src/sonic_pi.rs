//! The acoustic kit's source: the drum recordings of Sonic Pi's sample pack (CC0, recorded by
//! menegass and Neotone for freesound.org), each drum at two strengths (`_soft`, `_hard`). They
//! come from Debian's `sonic-pi-samples` package, fetched once from the Debian archive (a
//! package registry, over plain HTTP as apt does) and checked against its pinned sha256; only the
//! drum files and the copyright file are kept in the cache.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The Debian package, as named in CREDITS.txt.
pub const PACKAGE: &str = "sonic-pi-samples 3.2.2~repack-8 (Debian bookworm)";
/// Its path in the Debian archive.
pub const POOL_PATH: &str = "pool/main/s/sonic-pi/sonic-pi-samples_3.2.2~repack-8_all.deb";
/// sha256 of the .deb (as in the archive's signed package index).
pub const DEB_SHA256: &str = "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d";
/// The archive used unless `KEYBOARDIA_DEBIAN_MIRROR` names another.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

const SAMPLES_IN_PACKAGE: &str = "./usr/share/sonic-pi/samples/";
const COPYRIGHT_IN_PACKAGE: &str = "./usr/share/doc/sonic-pi-samples/copyright";

/// The files taken from the package: the recordings by name (`drum_snare_hard.flac`) and the
/// package's copyright file.
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
    pub copyright: String,
}

impl Pack {
    pub fn file(&self, name: &str) -> Result<&[u8]> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .with_context(|| format!("{name} is not in {PACKAGE}"))
    }

    /// The copyright file's paragraphs for the files used, and its CC0 licence text.
    pub fn credits(&self, used: &[&str]) -> Result<String> {
        let mut s = String::new();
        for para in self.copyright.split("\n\n") {
            let names_used = used
                .iter()
                .any(|f| para.starts_with(&format!("Files: etc/samples/{f}\n")));
            if names_used {
                s.push_str(para.trim());
                s.push_str("\n\n");
            }
        }
        let cc0 = self
            .copyright
            .split("\n\n")
            .find(|p| p.starts_with("License: CC0\n"))
            .context("the package's copyright file has no CC0 licence text")?;
        s.push_str(cc0.trim());
        s.push('\n');
        Ok(s)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The drum files and copyright text, from `cache/sonic-pi/` or fetched (22 MB) and unpacked.
pub fn fetch(cache: &Path) -> Result<Pack> {
    let dir = cache.join("sonic-pi");
    let stamp = dir.join("SOURCE");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(DEB_SHA256) {
        let mut files = BTreeMap::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".flac") {
                files.insert(name, fs::read(e.path())?);
            }
        }
        let copyright = fs::read_to_string(dir.join("copyright"))?;
        return Ok(Pack { files, copyright });
    }
    let mirror =
        std::env::var("KEYBOARDIA_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string());
    let url = format!("{}/{POOL_PATH}", mirror.trim_end_matches('/'));
    eprintln!("fetching {PACKAGE} from the Debian archive (22 MB): {url} ...");
    let deb = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()?
        .get(&url)
        .send()
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("fetching {url}: is the Debian archive reachable?"))?
        .bytes()
        .with_context(|| format!("reading {url}"))?;
    let sum = hex(&Sha256::digest(&deb));
    if sum != DEB_SHA256 {
        bail!("{url} has sha256 {sum}, expected {DEB_SHA256}: refusing it");
    }
    let pack = unpack(&deb)?;
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    for (name, bytes) in &pack.files {
        fs::write(dir.join(name), bytes)?;
    }
    fs::write(dir.join("copyright"), &pack.copyright)?;
    fs::write(&stamp, DEB_SHA256)?;
    Ok(pack)
}

/// The drum recordings and the copyright file from a .deb (an `ar` archive holding
/// `data.tar.xz`).
fn unpack(deb: &[u8]) -> Result<Pack> {
    let mut archive = ar::Archive::new(deb);
    let mut data = None;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.context("reading the .deb")?;
        if entry.header().identifier() == b"data.tar.xz" {
            let mut xz = Vec::new();
            entry.read_to_end(&mut xz)?;
            let mut tar = Vec::new();
            lzma_rs::xz_decompress(&mut xz.as_slice(), &mut tar)
                .map_err(|e| anyhow::anyhow!("unpacking data.tar.xz: {e:?}"))?;
            data = Some(tar);
        }
    }
    let data = data.context("the .deb has no data.tar.xz")?;
    let mut files = BTreeMap::new();
    let mut copyright = None;
    for entry in tar::Archive::new(data.as_slice()).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if let Some(name) = path.strip_prefix(SAMPLES_IN_PACKAGE) {
            if name.starts_with("drum_") && name.ends_with(".flac") {
                let mut v = Vec::new();
                entry.read_to_end(&mut v)?;
                files.insert(name.to_string(), v);
            }
        } else if path == COPYRIGHT_IN_PACKAGE {
            let mut s = String::new();
            entry.read_to_string(&mut s)?;
            copyright = Some(s);
        }
    }
    let copyright = copyright.context("the package has no copyright file")?;
    if files.is_empty() {
        bail!("the package has no drum recordings");
    }
    Ok(Pack { files, copyright })
}
