//! The local state store: one JSON file, written atomically, guarded by an operating-system lock.
//!
//! A write goes to a temporary file in the same folder, is flushed to disk, and replaces the
//! state by rename; the folder is flushed too, so a crash leaves either the old or the new state,
//! never a torn one. The version being replaced is kept as `<state>.backup`. The lock is an
//! OS file lock on `<state>.lock`, so a holder killed with SIGKILL frees it at once; the lock
//! file's text names the holder for the message a waiting run prints.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{LockInfo, State, StateBackend, StateError, parse};

/// The state file and, while this value lives, its lock.
pub struct FileBackend {
    path: PathBuf,
    lock: Option<File>,
    /// The serial on disk when this run last read or wrote it.
    serial_on_disk: Option<u64>,
}

/// How to wait for the lock.
#[derive(Clone, Debug)]
pub struct LockRequest {
    pub info: LockInfo,
    pub timeout: Duration,
}

impl FileBackend {
    /// Opens the state at `path` without locking it: for commands that only read.
    pub fn open_read_only(path: &Path) -> FileBackend {
        FileBackend {
            path: path.to_path_buf(),
            lock: None,
            serial_on_disk: None,
        }
    }

    /// Opens the state at `path` and takes its lock, waiting up to the request's timeout.
    pub fn open_locked(path: &Path, request: &LockRequest) -> Result<FileBackend, StateError> {
        let lock_path = sibling(path, "lock");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StateError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StateError::Write {
                path: lock_path.display().to_string(),
                source,
            })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= request.timeout {
                        let mut text = String::new();
                        let _ = file.read_to_string(&mut text);
                        let holder = serde_json::from_str::<LockInfo>(&text)
                            .map_or_else(|_| "another orgform run".to_string(), |h| h.to_string());
                        return Err(StateError::Locked {
                            holder,
                            waited: humantime::format_duration(request.timeout).to_string(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(source)) => {
                    return Err(StateError::Write {
                        path: lock_path.display().to_string(),
                        source,
                    });
                }
            }
        }
        // Ours now: say who holds it. Best effort: the lock itself is the OS lock.
        let text = serde_json::to_string_pretty(&request.info).unwrap_or_default();
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(text.as_bytes());
        let _ = file.sync_data();
        Ok(FileBackend {
            path: path.to_path_buf(),
            lock: Some(file),
            serial_on_disk: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn path_str(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for FileBackend {
    fn drop(&mut self) {
        if let Some(file) = self.lock.take() {
            // Clear the holder's name before the OS lock goes with the file handle.
            let _ = file.set_len(0);
        }
    }
}

/// `state/orgform.state.json` -> `state/orgform.state.json.<suffix>`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

impl StateBackend for FileBackend {
    async fn load(&mut self) -> Result<Option<State>, StateError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.serial_on_disk = None;
                return Ok(None);
            }
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path_str(),
                    source,
                });
            }
        };
        let state = parse(&self.path_str(), &text)?;
        self.serial_on_disk = Some(state.serial);
        Ok(Some(state))
    }

    async fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        debug_assert!(self.lock.is_some(), "writes need the lock");
        if let Some(on_disk) = self.serial_on_disk
            && on_disk != state.serial
        {
            return Err(StateError::Conflict {
                path: self.path_str(),
                expected: state.serial,
                found: on_disk,
            });
        }
        let mut next = state.clone();
        next.serial += 1;
        let mut text = serde_json::to_vec_pretty(&next).map_err(|e| StateError::Write {
            path: self.path_str(),
            source: std::io::Error::other(e),
        })?;
        text.push(b'\n');
        write_atomically(&self.path, &text, true).map_err(|source| StateError::Write {
            path: self.path_str(),
            source,
        })?;
        state.serial = next.serial;
        self.serial_on_disk = Some(next.serial);
        Ok(())
    }

    fn describe(&self) -> String {
        self.path_str()
    }
}

/// Replaces `path` with `bytes` so that a crash at any instant leaves the old or the new file:
/// temp file (0600) in the same folder, fsync, optional backup of the old version by hard link,
/// rename, fsync of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8], keep_backup: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let backup_tmp = sibling(path, &format!("backup-tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; set it outright.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        if keep_backup && path.exists() {
            let backup = sibling(path, "backup");
            let _ = fs::remove_file(&backup_tmp);
            fs::hard_link(path, &backup_tmp)?;
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

/// What `force-unlock` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// The holder was gone; its record is cleared.
    Cleared(LockInfo),
    /// Nobody held the lock.
    WasFree,
}

/// Releases the lock on the state at `path` if its holder is gone and its id is `lock_id`.
/// The lock is an OS lock, so a dead holder has already lost it; what remains is the record
/// naming it, cleared here. A live holder is never overridden: it is named instead.
pub fn force_unlock(path: &Path, lock_id: &str) -> Result<Unlocked, StateError> {
    let lock_path = sibling(path, "lock");
    let err = |source| StateError::Write {
        path: lock_path.display().to_string(),
        source,
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Unlocked::WasFree),
        Err(e) => return Err(err(e)),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(err)?;
    let holder = serde_json::from_str::<LockInfo>(&text).ok();
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                holder: holder.map_or_else(|| "a running orgform".to_string(), |h| h.to_string()),
                waited: "0s (force-unlock never overrides a live holder: stop it first)".into(),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    match holder {
        None => Ok(Unlocked::WasFree),
        Some(h) if h.id != lock_id => Err(StateError::Corrupt {
            path: lock_path.display().to_string(),
            message: format!(
                "the lock record is `{}`, not `{lock_id}`; nothing was changed",
                h.id
            ),
        }),
        Some(h) => {
            file.set_len(0).map_err(err)?;
            Ok(Unlocked::Cleared(h))
        }
    }
}
