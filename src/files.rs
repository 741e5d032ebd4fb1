//! Reading the files a user names (spec files, secret files) and opening the files orgform keeps
//! beside its state, safely against what may sit at those paths instead.
//!
//! A file a user names is read only if it is a regular file (a link is resolved first): a FIFO
//! would hang the read, a device like `/dev/zero` would never end, a folder has nothing to read.
//! Opening never blocks (`O_NONBLOCK`), the kind is checked on the open handle (so a swap after
//! a look at the path changes nothing), and the read stops one byte past a cap, so that neither
//! a huge file nor a `/proc` file that claims a size of 0 can exhaust memory.
//!
//! Files orgform creates beside its state (lock, journal) are opened with `O_NOFOLLOW`: a link
//! planted there is refused, never written through.
//!
//! A file orgform writes whole (the state, a saved plan, a formatted spec, the sandbox's data)
//! is replaced atomically ([`write_atomically`]): a crash leaves the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::escape::ShownPath;

/// What a file is read as, and the most orgform reads of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    /// What the file is to orgform, for messages: "spec file", "secret file".
    pub(crate) what: &'static str,
    /// The most bytes read; a larger file is refused unread.
    pub(crate) cap: u64,
}

/// Spec files: 32 MiB. The largest workload (100,000 organizations in 100 files) has files of
/// about 250 KB; a hundred times that is still a spec, more is a mistake or an attack.
pub(crate) const SPEC_FILE: Limit = Limit {
    what: "spec file",
    cap: 32 << 20,
};

/// Saved plans: 1 GiB. A change with its attributes is a few KB at most, so a plan of 100,000
/// organizations stays well below it; the cap is there so that a runaway file can't exhaust
/// memory.
pub(crate) const PLAN_FILE: Limit = Limit {
    what: "plan file",
    cap: 1 << 30,
};

/// Secret files: 64 KiB. A PEM private key is about 3 KB; a secret is never a large file.
pub(crate) const SECRET_FILE: Limit = Limit {
    what: "secret file",
    cap: 64 << 10,
};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    #[error("cannot read the {what} {}: {source}", ShownPath(.path))]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the {what} {} is {kind}, not a regular file; orgform reads only regular files",
        ShownPath(.path)
    )]
    #[diagnostic(help("point at a regular file (a link to one is fine)"))]
    NotRegular {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error(
        "the spec file {} is a link to {}, outside the specs folder {}; orgform follows links only within it, so that a spec can't show another file in its errors",
        ShownPath(.path),
        ShownPath(.target),
        ShownPath(.folder)
    )]
    #[diagnostic(help(
        "copy the file into the specs folder, or point --specs at a folder that holds it"
    ))]
    LinkOutside {
        path: PathBuf,
        target: PathBuf,
        folder: PathBuf,
    },
    #[error(
        "the {what} {} is larger than the {cap} cap for {what}s; it was not read",
        ShownPath(.path)
    )]
    #[diagnostic(help("a {what} this large is a mistake: check what the path points at"))]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        cap: String,
    },
}

impl FileError {
    /// Whether the file is simply not there (the sandbox stands in for a missing secret file).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == ErrorKind::NotFound)
    }
}

/// What a file that is not a regular file is, in words.
pub(crate) fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// `64 KiB`, `32 MiB`.
fn show_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// Reads the regular file at `path` (links resolved), at most `limit.cap` bytes of it.
pub(crate) fn read_regular(path: &Path, limit: Limit) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        what: limit.what,
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |kind| FileError::NotRegular {
        what: limit.what,
        path: path.to_path_buf(),
        kind,
    };
    let too_large = || FileError::TooLarge {
        what: limit.what,
        path: path.to_path_buf(),
        cap: show_size(limit.cap),
    };
    // A look before opening, so that a device is never opened (opening some has effects);
    // the open handle is checked again below, which is what counts.
    let seen = std::fs::metadata(path).map_err(io)?;
    if !seen.is_file() {
        return Err(not_regular(kind_of(seen.file_type())));
    }
    // O_NONBLOCK: if a FIFO was swapped in since, opening it returns at once instead of
    // waiting for a writer. It changes nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    if !opened.is_file() {
        return Err(not_regular(kind_of(opened.file_type())));
    }
    if opened.len() > limit.cap {
        return Err(too_large());
    }
    // The size is a hint only (`/proc` files say 0, a file may grow): the read itself is capped.
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.take(limit.cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit.cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads the spec file at `path`, found under the specs folder `folder` (canonical): a link is
/// followed only to a file inside that folder. A link out of it is how a pull request would show
/// `/proc/self/environ` or `../secrets/key` in the error snippets of `validate` in a CI log.
pub(crate) fn read_spec(folder: &Path, path: &Path) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        what: SPEC_FILE.what,
        path: path.to_path_buf(),
        source,
    };
    let is_link = std::fs::symlink_metadata(path)
        .map_err(io)?
        .file_type()
        .is_symlink();
    if !is_link {
        return read_regular(path, SPEC_FILE);
    }
    let target = std::fs::canonicalize(path).map_err(io)?;
    if !target.starts_with(folder) {
        return Err(FileError::LinkOutside {
            path: path.to_path_buf(),
            target,
            folder: folder.to_path_buf(),
        });
    }
    // The target as resolved is what was checked, so it is what is read (the errors name the
    // link, as the user wrote it).
    read_regular(&target, SPEC_FILE).map_err(|e| match e {
        FileError::Io { what, source, .. } => FileError::Io {
            what,
            path: path.to_path_buf(),
            source,
        },
        FileError::NotRegular { what, kind, .. } => FileError::NotRegular {
            what,
            path: path.to_path_buf(),
            kind,
        },
        FileError::TooLarge { what, cap, .. } => FileError::TooLarge {
            what,
            path: path.to_path_buf(),
            cap,
        },
        outside @ FileError::LinkOutside { .. } => outside,
    })
}

/// Opens a file orgform keeps beside its state with `options`, never through a link and never
/// waiting on a FIFO; anything but a regular file there is refused with an error that says what
/// is in the way.
pub(crate) fn open_beside_state(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                in_the_way(path, "a symbolic link")
            } else {
                e
            }
        })?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(in_the_way(path, kind_of(file_type)));
    }
    Ok(file)
}

fn in_the_way(path: &Path, kind: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "{} is {kind}, not a regular file; orgform keeps its state in regular files only and never follows a link there: remove it",
        path.display()
    ))
}

/// `state/orgform.state.json` -> `state/orgform.state.json.<suffix>`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// What [`write_atomically`] does with the version of the file it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OldVersion {
    /// Kept as `<path>.backup` (0600), so that a write gone wrong can be undone by hand: the state.
    KeepAsBackup,
    /// Gone once replaced: a formatted spec, a saved plan, the sandbox's data.
    Discard,
}

/// Replaces `path` with `bytes` so that a crash at any instant leaves the old or the new file:
/// temp file (new, 0600) in the same folder, fsync, the old version kept as `<path>.backup` if
/// asked (made 0600, then hard-linked), rename, fsync of the folder. Renames replace whatever
/// name is in the way, a link included, and never write through it. For the state, `path` is
/// resolved already.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], old: OldVersion) -> std::io::Result<()> {
    write_atomically_with(path, old, |out| out.write_all(bytes))
}

/// [`write_atomically`], the content written by `write` as it is made, through a buffer: a
/// large document (a state of a hundred thousand records) is never held whole in memory.
pub(crate) fn write_atomically_with(
    path: &Path,
    old: OldVersion,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let backup_tmp = sibling(path, &format!("backup-tmp-{}", std::process::id()));
    let result = (|| {
        // A leftover of a killed run with this pid (or a link planted there) is removed, not
        // opened: the temp file is always new (O_EXCL, which never follows a link).
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; set it outright.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, &file);
        write(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        drop(file);
        if old == OldVersion::KeepAsBackup && fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        {
            let backup = sibling(path, "backup");
            let _ = fs::remove_file(&backup_tmp);
            keep_as_backup(path, &backup_tmp)?;
            fs::rename(&backup_tmp, &backup)?;
        }
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(&backup_tmp);
    }
    result
}

/// Makes `backup` a 0600 copy of the file at `path`: a hard link after the old file's mode is
/// set to 0600 (it is about to be replaced, and a link shares its mode), or a real copy if that
/// mode can't be set (a file owned by another user).
fn keep_as_backup(path: &Path, backup: &Path) -> std::io::Result<()> {
    let mut old = open_beside_state(path, OpenOptions::new().read(true))?;
    if old
        .set_permissions(fs::Permissions::from_mode(0o600))
        .is_ok()
    {
        return fs::hard_link(path, backup);
    }
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(backup)?;
    copy.set_permissions(fs::Permissions::from_mode(0o600))?;
    std::io::copy(&mut old, &mut copy)?;
    copy.sync_all()
}

/// The user id that owns this process's files: the owner of `/proc/self` (Linux gives a
/// process's `/proc` folder its effective user), or `None` where that can't be told.
pub(crate) fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether `dir` may hold files only this user writes: a folder (not a link to one), owned by
/// `uid`, that neither its group nor others may write to. Only such a folder is trusted to
/// hold what orgform reads back as already checked (the spec cache).
pub(crate) fn is_private_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

/// Makes the folder `dir` (0700) if it is missing, its parents as usual; true if it is there
/// now and private ([`is_private_dir`]). Never changes a folder that was there.
pub(crate) fn make_private_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    if fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            let _ = fs::create_dir_all(parent);
        }
        // The mode is filtered by the umask, which only takes bits away.
        let _ = fs::DirBuilder::new().mode(0o700).create(dir);
    }
    is_private_dir(dir, uid)
}

/// Reads a file orgform wrote for itself in a private folder (the spec cache's entries): only
/// a regular file (never through a link, never waiting on a FIFO) owned by `uid`, readable and
/// writable by it alone, of at most `cap` bytes. `None` for anything else: such a file is
/// not orgform's, or not whole, and is simply not used.
pub(crate) fn read_private(path: &Path, uid: u32, cap: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != uid || meta.mode() & 0o077 != 0 || meta.len() > cap {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= cap).then_some(bytes)
}

/// Replaces `path` with `bytes` as [`write_atomically`] does (a new 0600 temp file in the same
/// folder, renamed over it, never writing through a link), but without waiting for the disk:
/// for a file whose own checksum tells a torn write (the spec cache's entries), where a crash
/// costs a miss, and a hundred fsyncs measured 0.1 to 0.8 s here.
pub(crate) fn write_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
