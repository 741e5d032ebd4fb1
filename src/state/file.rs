//! The local state store: one JSON file, written atomically, guarded by an operating-system lock.
//!
//! A write goes to a temporary file in the same folder, is flushed to disk, and replaces the
//! state by rename; the folder is flushed too, so a crash leaves either the old or the new state,
//! never a torn one. The version being replaced is kept as `<state>.backup`.
//!
//! During apply, changes go to `<state>.journal` instead: a header line naming the lineage and
//! serial it applies to, then the changes as JSON lines in one deflate stream, each group commit
//! ending in a sync flush and flushed to disk before its changes count. The dictionary carries
//! across commits, so a create costs tens of bytes, not the kilobyte its record is, and the
//! cost doesn't grow with the state. The journal is folded into a new version at the end of the
//! run; a run killed before that leaves it for the next load to replay (a torn tail, from a kill
//! mid-write, ends the stream where it decodes no further; an incomplete last line is ignored:
//! its change never counted). A run that finds such a journal folds it into a new version
//! before its first append, since a torn stream can't be continued. A large state (format 2,
//! which an orgform that would not replay such a journal refuses) keeps a journal that is small
//! beside it from one run to the next, each run appending its own stream, so that a few creates
//! don't rewrite a hundred thousand records; it is folded once it has grown. The lock is an
//! OS file lock on `<state>.lock`, so a holder killed with SIGKILL frees it at once; the lock
//! file's text names the holder for the message a waiting run prints.
//!
//! The state path is resolved once, when the store is opened ([`resolve`]): links followed and
//! the folder made canonical, so that a link and its target name one file and thus one lock.
//! Every file beside it (lock, journal, temporary file, backup) is named from the resolved path
//! and opened without following links; the state and its backup are 0600 after every write.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::deflate::stream::deflate;
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use super::{
    JOURNALED_FORMAT_VERSION, LockInfo, STANDALONE_FORMAT_VERSION, State, StateBackend, StateError,
    StateOp, parse_owned,
};
use crate::files::{OldVersion, open_beside_state, sibling, write_atomically_with};

/// The state file and, while this value lives, its lock.
pub struct FileBackend {
    /// The real file, resolved once at open: what is read, locked, written and backed up.
    path: PathBuf,
    /// The path as the user gave it, for messages.
    given: PathBuf,
    lock: Option<File>,
    /// The serial on disk when this run last read or wrote it.
    serial_on_disk: Option<u64>,
    /// The journal, open for appending, once this run has appended to it.
    journal: Option<File>,
    /// The base serial of a valid journal found on disk (replayed by `load`).
    journal_base: Option<u64>,
    /// Whether the journal holds changes not folded into the state file yet.
    dirty: bool,
    /// Whether the journal on disk was left by an earlier run (replayed by `load`).
    journal_found: bool,
    /// Whether that journal decoded whole, to a commit's end: this run may append to it.
    journal_whole: bool,
    /// The journal's compressor, its dictionary kept across this run's commits.
    compressor: Option<Box<CompressorOxide>>,
}

/// The journal format this version writes: a JSON header line, then one raw deflate stream of
/// JSON lines, flushed to a byte boundary (a sync flush) at the end of every commit. Format 1,
/// plain JSON lines, is still read.
const JOURNAL_FORMAT: u32 = 2;

/// Records from which a state is written as one a journal may accompany across runs.
const JOURNALED_ABOVE: usize = 2_000;

/// A state file below this size is always rewritten at the end of an apply.
const FOLD_ABOVE: u64 = 4 << 20;

/// Above it, the journal is folded once it is this fraction of the state file or more (a
/// compressed create takes about a tenth of the room its record takes in the state).
const FOLD_RATIO: u64 = 16;

/// Deflate level: the commits are small and alike, so a fast level finds most of the repeats.
const JOURNAL_LEVEL: u8 = 3;

/// Compresses one commit's lines onto the stream, ending in a sync flush: everything written
/// so far decodes without what comes after.
fn deflate_commit(compressor: &mut CompressorOxide, lines: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = vec![0u8; lines.len() / 2 + 64];
    let mut written = 0;
    let mut input = lines;
    loop {
        if written == out.len() {
            out.resize(out.len() * 2, 0);
        }
        let result = deflate(compressor, input, &mut out[written..], MZFlush::Sync);
        written += result.bytes_written;
        input = &input[result.bytes_consumed..];
        match result.status {
            Ok(_) if input.is_empty() && written < out.len() => break,
            Ok(_) => {}
            Err(e) => return Err(std::io::Error::other(format!("deflate: {e:?}"))),
        }
    }
    out.truncate(written);
    Ok(out)
}

/// Decompresses as much of a journal's stream as is there: a kill mid-write leaves a torn
/// tail, which ends the text where the decoder stops (its last line, incomplete, is dropped by
/// the reader).
fn inflate_prefix(body: &[u8]) -> (String, bool) {
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut input = body;
    let mut failed = false;
    loop {
        let result = inflate(&mut state, input, &mut chunk, MZFlush::None);
        out.extend_from_slice(&chunk[..result.bytes_written]);
        input = &input[result.bytes_consumed..];
        match result.status {
            Ok(MZStatus::Ok) if result.bytes_consumed > 0 || result.bytes_written > 0 => {}
            Ok(_) => break,
            Err(_) => {
                failed = !input.is_empty();
                break;
            }
        }
    }
    // Whole: every byte decoded, ending on a commit's sync flush (an empty stored block) and a
    // complete line, so a new compressor's stream may follow it.
    let whole = !failed
        && input.is_empty()
        && (body.is_empty() || (body.ends_with(&[0, 0, 0xff, 0xff]) && out.ends_with(b"\n")));
    (String::from_utf8_lossy(&out).into_owned(), whole)
}

/// The first line of a journal.
#[derive(serde::Serialize, serde::Deserialize)]
struct JournalHeader {
    journal: u32,
    lineage: String,
    base_serial: u64,
}

/// How long a run waits for a state lock (file or PostgreSQL) before it says so, and who holds
/// it: a lock that frees at once says nothing.
pub(crate) const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How to wait for the lock.
#[derive(Clone, Debug)]
pub struct LockRequest {
    pub info: LockInfo,
    pub timeout: Duration,
}

/// Who holds the lock, from the record its holder wrote in the lock file; `None` when there is
/// no readable record (an older orgform, or a holder between taking the lock and writing it).
fn read_holder(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl FileBackend {
    /// Opens the state at `path` without locking it: for commands that only read.
    pub(crate) fn open_read_only(path: &Path) -> Result<FileBackend, StateError> {
        Ok(FileBackend {
            path: resolve(path, false)?,
            given: path.to_path_buf(),
            lock: None,
            serial_on_disk: None,
            journal: None,
            journal_base: None,
            dirty: false,
            journal_found: false,
            journal_whole: false,
            compressor: None,
        })
    }

    /// Opens the state at `path` and takes its lock, waiting up to the request's timeout.
    pub fn open_locked(path: &Path, request: &LockRequest) -> Result<FileBackend, StateError> {
        let given = path;
        let path = &resolve(given, true)?;
        // A state path that is a device, a FIFO or a folder is refused before anything is made
        // beside it (`--state /dev/zero` made `/dev/zero.lock`).
        if let Ok(meta) = fs::metadata(path)
            && !meta.is_file()
        {
            return Err(StateError::Read {
                path: given.display().to_string(),
                source: std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "it is {}, not a regular file; nothing was written beside it",
                        crate::files::kind_of(meta.file_type())
                    ),
                ),
            });
        }
        let lock_path = sibling(path, "lock");
        let mut file = open_beside_state(
            &lock_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )
        .map_err(|source| StateError::Write {
            path: lock_path.display().to_string(),
            source,
        })?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= request.timeout {
                        let holder = read_holder(&mut file)
                            .map_or_else(|| "another orgform run".to_string(), |h| h.to_string());
                        return Err(StateError::Locked {
                            holder,
                            waited: humantime::format_duration(request.timeout).to_string(),
                        });
                    }
                    if !said && started.elapsed() >= LOCK_NOTICE_AFTER {
                        said = true;
                        let holder = read_holder(&mut file).map(|h| h.to_string());
                        crate::output::waiting_for_lock(holder.as_deref(), request.timeout);
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
            path: path.clone(),
            given: given.to_path_buf(),
            lock: Some(file),
            serial_on_disk: None,
            journal: None,
            journal_base: None,
            dirty: false,
            journal_found: false,
            journal_whole: false,
            compressor: None,
        })
    }

    fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    /// The path as given, and the real file when that is elsewhere (a link on the way).
    fn shown(&self) -> String {
        use crate::escape::ShownPath;
        if std::path::absolute(&self.given).is_ok_and(|a| a == self.path) {
            ShownPath(&self.given).to_string()
        } else {
            format!("{} (-> {})", ShownPath(&self.given), ShownPath(&self.path))
        }
    }
}

/// The real file behind the state path `path`: each link followed to where it points (even to
/// a file not made yet) and its folder made canonical, so that every name of one state file
/// gives one path, and thus one lock. `create` makes a missing folder (a run that writes);
/// without it, a missing folder leaves `path` as given (there is nothing to read).
pub(crate) fn resolve(path: &Path, create: bool) -> Result<PathBuf, StateError> {
    let error = |source| StateError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut current = path.to_path_buf();
    // Forty links at most, as the kernel allows: a loop of links is an error, not a hang.
    for _ in 0..40 {
        let Some(name) = current.file_name().map(std::ffi::OsStr::to_os_string) else {
            return Err(error(std::io::Error::new(
                ErrorKind::InvalidInput,
                "the state path must name a file, not a folder",
            )));
        };
        let parent = match current.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if create {
            fs::create_dir_all(&parent).map_err(|source| StateError::Write {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let folder = match fs::canonicalize(&parent) {
            Ok(folder) => folder,
            Err(e) if !create && e.kind() == ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(error(e)),
        };
        let candidate = folder.join(&name);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                // A relative target is relative to the link's folder; an absolute one replaces it.
                current = folder.join(fs::read_link(&candidate).map_err(error)?);
            }
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(candidate),
            Err(e) => return Err(error(e)),
        }
    }
    Err(error(std::io::Error::other(
        "too many links on the way to the state file (a loop?)",
    )))
}

impl Drop for FileBackend {
    fn drop(&mut self) {
        if let Some(file) = self.lock.take() {
            // Clear the holder's name before the OS lock goes with the file handle.
            let _ = file.set_len(0);
        }
    }
}

impl FileBackend {
    fn journal_path(&self) -> PathBuf {
        sibling(&self.path, "journal")
    }

    fn write_error(&self, source: std::io::Error) -> StateError {
        StateError::Write {
            path: self.path_str(),
            source,
        }
    }

    /// Replays a journal left by an earlier run onto `state`, if it applies to this version.
    fn replay_journal(&mut self, state: &mut Option<State>) -> Result<(), StateError> {
        let path = self.journal_path();
        // Only a regular file is a journal (a link, device or folder in its place is not read;
        // the run that would write one refuses it).
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        let read_error = |source| StateError::Read {
            path: path.display().to_string(),
            source,
        };
        let mut bytes = Vec::new();
        open_beside_state(&path, OpenOptions::new().read(true))
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(read_error)?;
        let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
            return Ok(()); // torn before its header was durable: nothing in it counted
        };
        let Ok(header) = serde_json::from_slice::<JournalHeader>(&bytes[..end]) else {
            return Ok(());
        };
        let applies = match state {
            Some(s) => s.lineage == header.lineage && s.serial == header.base_serial,
            None => header.base_serial == 0,
        };
        let body = &bytes[end + 1..];
        let (text, whole) = match header.journal {
            1 => (String::from_utf8_lossy(body).into_owned(), false),
            JOURNAL_FORMAT => inflate_prefix(body),
            _ => return Ok(()),
        };
        if !applies {
            return Ok(()); // folded already, or from another lineage: stale
        }
        let lines = text.split_inclusive('\n');
        let state = state.get_or_insert_with(|| State::new(header.lineage.clone()));
        let mut replayed = 0usize;
        let lines: Vec<&str> = lines.collect();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            if !line.ends_with('\n') {
                break; // torn by a kill mid-write: that change was never acknowledged
            }
            match serde_json::from_str::<StateOp>(line) {
                Ok(op) => {
                    state.apply(&op);
                    replayed += 1;
                }
                Err(_) if last => break,
                Err(e) => {
                    return Err(StateError::Corrupt {
                        path: path.display().to_string(),
                        message: format!("journal line {}: {e}", i + 2),
                    });
                }
            }
        }
        self.journal_base = Some(header.base_serial);
        self.journal_found = true;
        self.journal_whole = whole;
        self.dirty = replayed > 0;
        Ok(())
    }

    /// Opens the journal for appending: the one on disk if it applies to this version, else a
    /// fresh one with its header made durable.
    fn open_journal(&mut self, state: &State) -> Result<&mut File, StateError> {
        if self.journal.is_none() {
            let path = self.journal_path();
            let base = self.serial_on_disk.unwrap_or(0);
            let mut compressor = Box::<CompressorOxide>::default();
            compressor.set_format_and_level(DataFormat::Raw, JOURNAL_LEVEL);
            if self.journal_found && self.journal_whole && self.journal_base == Some(base) {
                // An earlier run's journal for this version, whole to its last commit: a new
                // compressor's stream follows it (its blocks start on the byte boundary the
                // last sync flush left, and refer back only to its own text).
                let file = open_beside_state(&path, OpenOptions::new().append(true))
                    .map_err(|e| self.write_error(e))?;
                self.compressor = Some(compressor);
                return Ok(self.journal.insert(file));
            }
            // A fresh journal, with a compressor that starts with it; any other is replaced
            // (a torn one that applies to this version was folded in before: see `append`).
            // Never through a link planted in its place.
            let opened = open_beside_state(
                &path,
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600),
            );
            let mut file = opened.map_err(|e| self.write_error(e))?;
            let mut header = serde_json::to_vec(&JournalHeader {
                journal: JOURNAL_FORMAT,
                lineage: state.lineage.clone(),
                base_serial: base,
            })
            .map_err(|e| self.write_error(std::io::Error::other(e)))?;
            header.push(b'\n');
            file.write_all(&header).map_err(|e| self.write_error(e))?;
            file.sync_all().map_err(|e| self.write_error(e))?;
            if let Some(dir) = path.parent() {
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            self.journal_base = Some(base);
            self.journal_found = false;
            self.compressor = Some(compressor);
            self.journal = Some(file);
        }
        self.journal.as_mut().ok_or_else(|| StateError::Write {
            path: self.path.display().to_string(),
            source: std::io::Error::other("journal not open"),
        })
    }

    fn remove_journal(&mut self) {
        self.journal = None;
        self.compressor = None;
        self.journal_base = None;
        self.journal_found = false;
        self.journal_whole = false;
        self.dirty = false;
        let _ = fs::remove_file(self.journal_path());
    }
}

impl StateBackend for FileBackend {
    async fn load(&mut self) -> Result<Option<State>, StateError> {
        // The resolved file, opened without following a link or waiting on a FIFO.
        let mut text = String::new();
        let read = open_beside_state(&self.path, OpenOptions::new().read(true))
            .and_then(|mut f| f.read_to_string(&mut text));
        let mut state = match read {
            Ok(_) => Some(parse_owned(&self.path_str(), std::mem::take(&mut text))?),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path_str(),
                    source,
                });
            }
        };
        self.serial_on_disk = state.as_ref().map(|s| s.serial);
        self.replay_journal(&mut state)?;
        Ok(state)
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
        // Serialized as the next version in place: a copy of a large state would double the
        // run's memory at its end.
        let serial = state.serial;
        let version = state.version;
        state.serial = super::next_serial(serial, &self.path_str())?;
        // A large state may keep a journal beside it from one run to the next: it says so.
        state.version = if state.orgs.len() >= JOURNALED_ABOVE {
            JOURNALED_FORMAT_VERSION
        } else {
            STANDALONE_FORMAT_VERSION
        };
        // Streamed into the file: the text of a large state, held whole, was as large as the
        // state itself, at the end of the run when memory is at its highest.
        let written = write_atomically_with(&self.path, OldVersion::KeepAsBackup, |out| {
            serde_json::to_writer_pretty(&mut *out, &*state).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        });
        if let Err(e) = written {
            state.serial = serial;
            state.version = version;
            return Err(self.write_error(e));
        }
        self.serial_on_disk = Some(state.serial);
        // The whole state is on disk now: a journal for the previous version is folded in.
        self.remove_journal();
        Ok(())
    }

    async fn append(&mut self, state: &mut State, ops: &[StateOp]) -> Result<(), StateError> {
        if self.journal.is_none() && self.journal_found && self.dirty && !self.journal_whole {
            // A journal an earlier run left torn (killed mid-write), replayed on load: its
            // stream can't be continued, so this run folds it and these ops into a new version
            // once, and journals afresh from there.
            return self.write(state).await;
        }
        let mut lines = Vec::with_capacity(ops.len() * 256);
        for op in ops {
            serde_json::to_writer(&mut lines, op)
                .map_err(|e| self.write_error(std::io::Error::other(e)))?;
            lines.push(b'\n');
        }
        self.open_journal(state)?;
        let compressed = match self.compressor.as_mut() {
            Some(compressor) => deflate_commit(compressor, &lines),
            None => Err(std::io::Error::other("journal compressor missing")),
        }
        .map_err(|e| self.write_error(e))?;
        let Some(file) = self.journal.as_mut() else {
            return Err(self.write_error(std::io::Error::other("journal not open")));
        };
        let written = file.write_all(&compressed).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // A partial commit may be on disk; the next load ignores a torn tail, and this
            // run writes nothing more.
            self.journal = None;
            self.compressor = None;
            return Err(self.write_error(e));
        }
        self.dirty = true;
        Ok(())
    }

    fn journal_pending(&self) -> bool {
        self.dirty
    }

    /// Folds the journal into a new version, unless the state is large and the journal small
    /// beside it: then rewriting every record for a few changes would make a small apply cost
    /// as much as the whole state, and the journal is left for the next load to replay (and
    /// the next apply to append to) until it has grown.
    async fn compact(&mut self, state: &mut State) -> Result<(), StateError> {
        if !self.dirty {
            return Ok(());
        }
        let size = |p: &Path| fs::symlink_metadata(p).map_or(0, |m| m.len());
        let state_bytes = size(&self.path);
        let journal_bytes = size(&self.journal_path());
        if state.version >= JOURNALED_FORMAT_VERSION
            && state_bytes >= FOLD_ABOVE
            && journal_bytes.saturating_mul(FOLD_RATIO) < state_bytes
        {
            return Ok(());
        }
        self.write(state).await
    }

    fn describe(&self) -> String {
        self.shown()
    }
}

/// What `force-unlock` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unlocked {
    /// The holder was gone; its record is cleared.
    Cleared(LockInfo),
    /// Nobody held the lock.
    WasFree,
}

/// Releases the lock on the state at `path` if its holder is gone and its id is `lock_id`.
/// The lock is an OS lock, so a dead holder has already lost it; what remains is the record
/// naming it, cleared here. A live holder is never overridden: it is named instead.
pub(crate) fn force_unlock(path: &Path, lock_id: &str) -> Result<Unlocked, StateError> {
    let lock_path = sibling(&resolve(path, false)?, "lock");
    let err = |source| StateError::Write {
        path: lock_path.display().to_string(),
        source,
    };
    let mut file = match open_beside_state(&lock_path, OpenOptions::new().read(true).write(true)) {
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
            return Err(StateError::HeldByLiveRun {
                holder: holder.map_or_else(|| "a running orgform".to_string(), |h| h.to_string()),
                advice: "wait for it to finish, or stop it (Ctrl-C records what it sent); a local lock is an operating-system lock, freed the moment its holder ends".into(),
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

#[cfg(test)]
mod tests {

    use super::*;
    use crate::model::{NaturalKey, ProviderType};
    use crate::state::{Attributes, Record, Status};

    fn lock(path: &Path) -> FileBackend {
        let request = LockRequest {
            info: LockInfo {
                id: "test".into(),
                host: "here".into(),
                pid: 1,
                command: "test".into(),
                since: 0,
            },
            timeout: Duration::from_secs(1),
        };
        FileBackend::open_locked(path, &request).expect("lock")
    }

    fn pending(i: usize) -> StateOp {
        StateOp::Put {
            address: format!("org_{i:05}"),
            record: Box::new(Record {
                provider: "neon".into(),
                provider_type: ProviderType::Neoncrm,
                remote_id: None,
                natural_key: NaturalKey(format!("Organization {i}")),
                digest: format!("{i:064x}"),
                status: Status::Pending,
                attributes: Attributes::from_value(&serde_json::json!({
                    "organization_name": format!("Organization {i}"),
                    "url": "https://example.org",
                })),
                attempted_at: Some(1_700_000_000),
                updated_at: 1_700_000_000,
                error: None,
                detail: crate::state::Detail::default(),
            }),
        }
    }

    /// A kill at any byte of a compressed journal: every commit made durable before the cut is
    /// replayed, nothing fails to load, and a torn tail counts for nothing it did not finish.
    #[tokio::test]
    async fn a_compressed_journal_torn_at_any_byte_replays_every_complete_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let mut store = lock(&path);
        let mut state = store
            .load()
            .await
            .expect("load")
            .unwrap_or_else(|| State::new("l".into()));
        store.write(&mut state).await.expect("first version");
        // Commit k holds organizations 3k..3k+3; its journal length is where it ends.
        let mut ends = Vec::new();
        for k in 0..8 {
            let ops: Vec<StateOp> = (3 * k..3 * k + 3).map(pending).collect();
            for op in &ops {
                state.apply(op);
            }
            store.append(&mut state, &ops).await.expect("append");
            ends.push(fs::metadata(store.journal_path()).expect("journal").len());
        }
        let journal = fs::read(store.journal_path()).expect("read journal");
        drop(store);
        assert!(
            journal.len() < 24 * 200,
            "compressed: {} bytes for 24 records",
            journal.len()
        );
        let copy = dir.path().join("copy");
        fs::create_dir_all(&copy).expect("mkdir");
        fs::copy(&path, copy.join("state.json")).expect("copy state");
        for cut in 0..=journal.len() {
            fs::write(copy.join("state.json.journal"), &journal[..cut]).expect("cut");
            let mut reader = FileBackend::open_read_only(&copy.join("state.json")).expect("open");
            let loaded = reader.load().await.expect("a torn journal still loads");
            let held = loaded.map_or(0, |s| s.orgs.len());
            let durable = ends.iter().filter(|end| **end <= cut as u64).count();
            assert!(
                held >= 3 * durable,
                "cut at {cut}: {held} replayed, {durable} commits were durable"
            );
            assert!(held <= 24, "cut at {cut}");
        }
    }

    /// A journal left whole by an earlier run is appended to by the next, whose own stream
    /// follows it; a torn one is folded into a new version first.
    #[tokio::test]
    async fn a_whole_journal_is_continued_and_a_torn_one_folded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let mut state = State::new("l".into());
        {
            let mut store = lock(&path);
            store.write(&mut state).await.expect("first version");
            let ops: Vec<StateOp> = (0..3).map(pending).collect();
            store.append(&mut state, &ops).await.expect("append");
        }
        let serial = state.serial;
        {
            let mut store = lock(&path);
            let mut state = store.load().await.expect("load").expect("state");
            assert_eq!(state.orgs.len(), 3);
            let ops: Vec<StateOp> = (3..6).map(pending).collect();
            store.append(&mut state, &ops).await.expect("append again");
            assert_eq!(state.serial, serial, "continued, not folded");
        }
        let mut store = lock(&path);
        let state = store.load().await.expect("load").expect("state");
        assert_eq!(state.orgs.len(), 6);
        // Torn: the next append folds it all into a new version.
        let journal = fs::read(store.journal_path()).expect("journal");
        fs::write(store.journal_path(), &journal[..journal.len() - 3]).expect("tear");
        drop(store);
        let mut store = lock(&path);
        let mut state = store.load().await.expect("load").expect("state");
        let held = state.orgs.len();
        assert!(held >= 3, "{held}");
        let ops: Vec<StateOp> = (6..7).map(pending).collect();
        for op in &ops {
            state.apply(op);
        }
        store
            .append(&mut state, &ops)
            .await
            .expect("append after a tear");
        assert_eq!(state.serial, serial + 1, "folded");
        drop(store);
        let mut store = lock(&path);
        let state = store.load().await.expect("load").expect("state");
        assert_eq!(state.orgs.len(), held + 1);
    }
}
