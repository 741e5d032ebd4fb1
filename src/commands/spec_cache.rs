//! The spec cache: what validation made of each spec file that declares organizations only, kept
//! between runs, so that a run parses and checks only the files that changed (as cargo's
//! fingerprints and mypy's cache do). A hundred thousand organizations are 65 MB of TOML, whose
//! parse and checks took 1.7 s of every plan; read back, they take a small part of that.
//!
//! - **Where**: `$ORGFORM_CACHE_DIR`, else `$XDG_CACHE_HOME/orgform`, else `$HOME/.cache/orgform`;
//!   `ORGFORM_CACHE_DIR=off` (or empty) turns it off. Never in the specs folder or the
//!   repository: a pull request's author can commit files there, and a planted entry would make
//!   a plan say something other than the specs. The folder is made 0700 and used only if it is
//!   a folder (not a link), owned by this user, that neither group nor others may write; an
//!   entry is read only if it is a regular file (never through a link) owned by this user and
//!   private to it (0600, which no checkout makes), within a size cap.
//! - **Key**: BLAKE3 over the format number, orgform's version and this very binary (a rebuild
//!   may check differently), the file's path in the specs folder, its bytes, and every input from
//!   other files that checking it depends on: the bytes of every file that may declare providers,
//!   templates or `[state]` (`spec::may_declare_shared`). Those files are never kept themselves;
//!   if one such file goes unnoticed, the pure layer says so and the run reads every file as text.
//! - **What**: the file's organizations as validation made them (`spec::checked`), behind a
//!   header (magic, key, length) and a BLAKE3 hash of the whole: a hit is exactly what the text
//!   gives (same organizations, lines, digests). A file with any problem is never kept, nor is
//!   anything from a run whose specs have one. Specs hold secrets by reference only, so no
//!   secret value is ever written here.
//! - **Misses**: a missing, corrupt, truncated, foreign or unreadable entry is a miss, never an
//!   error and never a wrong result; a folder that can't be used turns the cache off for the run.
//! - **Bounded**: one entry per spec file of a specs folder (`specs-v1/<folder>/<file>`),
//!   replaced when the file changes; entries of files no longer there are removed, and so is
//!   the cache of a specs folder that is gone.
//! - **Cheap**: entries are written without an fsync (a torn one fails its checksum); reading
//!   and hashing the files is the only cost of a warm run that grows with the specs.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Bumped when what an entry holds, or how a key is made, changes.
const FORMAT: u32 = 2;
/// The folder under the cache's root that holds this format's entries.
const FORMAT_DIR: &str = "specs-v1";
const MAGIC: &[u8; 19] = b"orgform spec cache\n";
/// Header: magic, key, payload length; trailer: BLAKE3 of everything before it.
const HEADER: usize = MAGIC.len() + 32 + 8;
const TRAILER: usize = 32;
/// The largest entry read: a spec file is at most 32 MiB, and what validation makes of it is
/// about as large.
const ENTRY_CAP: u64 = 96 << 20;
/// The file in a specs folder's cache that names the folder, so that a gone one is removed.
const FOLDER_FILE: &str = "folder";

/// The BLAKE3 hash of one input to a key.
pub(crate) type Hash = [u8; 32];

/// The cache of one specs folder, open for a run.
pub(crate) struct SpecCache {
    /// `<root>/specs-v1`.
    format_dir: PathBuf,
    /// `<root>/specs-v1/<hash of the specs folder's canonical path>`.
    folder_dir: PathBuf,
    uid: u32,
    /// What every key starts with: the format, orgform's version and this binary.
    build: Hash,
}

/// Where the cache's root is, from the environment; `None` when it is off.
#[expect(
    clippy::disallowed_methods,
    reason = "a config reader: ORGFORM_CACHE_DIR, and the XDG base directories' XDG_CACHE_HOME and HOME"
)]
fn root_from_env() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = std::env::var_os("ORGFORM_CACHE_DIR") {
        if dir.is_empty() || dir == "off" {
            return None;
        }
        return Some(PathBuf::from(dir));
    }
    // The XDG base directory specification: a relative path is to be ignored.
    if let Some(xdg) = var("XDG_CACHE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Some(xdg.join("orgform"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache").join("orgform"))
}

/// This binary, as far as a key needs to tell builds apart: its path, size, inode and time of
/// last modification. A rebuild changes them; the version alone would give a development build the
/// previous build's results.
fn build_identity() -> Option<Hash> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(MAGIC);
    hasher.update(&FORMAT.to_le_bytes());
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(&[0]);
    hasher.update(exe.as_os_str().as_bytes());
    hasher.update(&[0]);
    for n in [meta.dev(), meta.ino(), meta.len()] {
        hasher.update(&n.to_le_bytes());
    }
    for n in [meta.mtime(), meta.mtime_nsec()] {
        hasher.update(&n.to_le_bytes());
    }
    Some(hasher.finalize().into())
}

fn hex16(hash: &Hash) -> String {
    hex::encode(&hash[..16])
}

impl SpecCache {
    /// The cache for the specs folder `folder` (canonical), or `None` if it is off or can't be
    /// used safely (said at debug level, or as a warning when the folder is not private).
    pub(crate) fn open(folder: &Path) -> Option<SpecCache> {
        let root = root_from_env()?;
        let uid = crate::files::own_uid()?;
        let build = build_identity()?;
        // Looked at as written before anything is made there, and resolved after.
        if std::path::absolute(&root).is_ok_and(|r| r.starts_with(folder)) {
            tracing::warn!(
                "the spec cache {} is inside the specs folder: it is not used",
                root.display()
            );
            return None;
        }
        if !crate::files::make_private_dir(&root, uid) {
            // A home that can't be written (a read-only system, HOME=/nonexistent) is no
            // one's mistake: the run goes on without the cache, quietly.
            if std::fs::symlink_metadata(&root).is_err() {
                tracing::debug!("the spec cache {} cannot be made", root.display());
                return None;
            }
            tracing::warn!(
                "the spec cache {} is not a folder private to this user (0700, not a link): it is not used",
                root.display()
            );
            return None;
        }
        let root = std::fs::canonicalize(&root).ok()?;
        if root.starts_with(folder) {
            tracing::warn!(
                "the spec cache {} is inside the specs folder: it is not used",
                root.display()
            );
            return None;
        }
        let format_dir = root.join(FORMAT_DIR);
        let folder_hash: Hash = blake3::hash(folder.as_os_str().as_bytes()).into();
        let folder_dir = format_dir.join(hex16(&folder_hash));
        if !crate::files::make_private_dir(&format_dir, uid) {
            return None;
        }
        if !crate::files::make_private_dir(&folder_dir, uid) {
            return None;
        }
        let folder_file = folder_dir.join(FOLDER_FILE);
        if std::fs::symlink_metadata(&folder_file).is_err() {
            let _ = crate::files::write_unsynced(&folder_file, folder.as_os_str().as_bytes());
        }
        Some(SpecCache {
            format_dir,
            folder_dir,
            uid,
            build,
        })
    }

    /// The key of a file: the build, what it depends on in other files (`shared`), and its own
    /// path in the specs folder and bytes (`content`, from [`content_hash`]).
    pub(crate) fn key(&self, shared: &Hash, content: &Hash) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.build);
        hasher.update(shared);
        hasher.update(content);
        hasher.finalize().into()
    }

    fn entry_path(&self, relative: &Path) -> PathBuf {
        let name: Hash = blake3::hash(relative.as_os_str().as_bytes()).into();
        self.folder_dir.join(hex16(&name))
    }

    /// The entry of `relative`, if it is whole and made under `key`.
    pub(crate) fn get(&self, relative: &Path, key: &Hash) -> Option<Entry> {
        let bytes = crate::files::read_private(&self.entry_path(relative), self.uid, ENTRY_CAP)?;
        let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(TRAILER)?)?;
        let (magic, rest) = body.split_at_checked(MAGIC.len())?;
        let (stored_key, rest) = rest.split_at_checked(32)?;
        let (length, payload) = rest.split_at_checked(8)?;
        let length = u64::from_le_bytes(length.try_into().ok()?);
        if magic != MAGIC
            || stored_key != key
            || usize::try_from(length).ok()? != payload.len()
            || blake3::hash(body).as_bytes() != check
        {
            return None;
        }
        let end = bytes.len() - TRAILER;
        Some(Entry { bytes, end })
    }

    /// Keeps `payload` as the entry of `relative` under `key`, replacing the one before. A
    /// failure costs a miss next time, nothing more.
    pub(crate) fn put(&self, relative: &Path, key: &Hash, payload: &[u8]) {
        let mut bytes = Vec::with_capacity(HEADER + payload.len() + TRAILER);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(payload);
        let check = blake3::hash(&bytes);
        bytes.extend_from_slice(check.as_bytes());
        let path = self.entry_path(relative);
        if let Err(e) = crate::files::write_unsynced(&path, &bytes) {
            tracing::debug!("spec cache: cannot write {}: {e}", path.display());
        }
    }

    /// Removes the entries of files not in `relatives` (the specs folder's files now), and,
    /// with `folders`, the caches of specs folders that are gone.
    pub(crate) fn prune<'p>(&self, relatives: impl Iterator<Item = &'p Path>, folders: bool) {
        let keep: HashSet<PathBuf> = relatives.map(|r| self.entry_path(r)).collect();
        if let Ok(entries) = std::fs::read_dir(&self.folder_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_name() != FOLDER_FILE && !keep.contains(&path) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if folders && let Ok(entries) = std::fs::read_dir(&self.format_dir) {
            for entry in entries.flatten() {
                let dir = entry.path();
                if dir == self.folder_dir {
                    continue;
                }
                // A folder's cache is removed only when it names a folder that is not there;
                // one that names nothing (being made, or not orgform's) is left alone.
                let named = crate::files::read_private(&dir.join(FOLDER_FILE), self.uid, 1 << 16);
                if let Some(named) = named
                    && std::fs::symlink_metadata(Path::new(OsStr::from_bytes(&named))).is_err()
                    && crate::files::is_private_dir(&dir, self.uid)
                {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
}

/// An entry read whole and checked.
pub(crate) struct Entry {
    bytes: Vec<u8>,
    /// Where the payload ends (the trailer follows).
    end: usize,
}

impl Entry {
    /// What was kept: the encoded organizations.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[HEADER..self.end]
    }
}

/// The hash of one spec file's path in the specs folder and its bytes.
pub(crate) fn content_hash(relative: &Path, bytes: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    let path = relative.as_os_str().as_bytes();
    hasher.update(&(path.len() as u64).to_le_bytes());
    hasher.update(path);
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
    hasher.finalize().into()
}

/// What every file's key depends on in other files: the content hashes of the files that may
/// declare providers, templates or `[state]`, in path order.
pub(crate) fn shared_hash<'h>(shared: impl Iterator<Item = &'h Hash>) -> Hash {
    let mut hasher = blake3::Hasher::new();
    for hash in shared {
        hasher.update(hash);
    }
    hasher.finalize().into()
}
