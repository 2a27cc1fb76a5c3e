//! The atomic writer: projects a set of files into a volume directory so that a reader sees
//! either the whole old set or the whole new one, as upstream's pkg/volume/util/atomic_writer.go.
//!
//! The files live in a hidden timestamped directory (`..2025_01_31_12_00_00.123456`); the
//! `..data` symlink points at it; each top-level name the user sees is a symlink through
//! `..data` (`key -> ..data/key`, `dir -> ..data/dir`). An update writes a new timestamped
//! directory, points `..data_tmp` at it and renames that over `..data` (one atomic step),
//! adds links for new names, removes links for names that went away and deletes the old
//! directory. Names starting with `..` are the writer's own.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::go_error_text;

/// The symlink to the current timestamped directory.
pub const DATA_DIR: &str = "..data";
/// The symlink renamed over [`DATA_DIR`].
pub const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME_LEN: usize = 255;
const MAX_PATH_LEN: usize = 4096;

/// One file to project: its bytes and its permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

impl FileProjection {
    pub fn new(data: impl Into<Vec<u8>>, mode: i32) -> Self {
        FileProjection { data: data.into(), mode: mode as u32 & 0o7777 }
    }
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// Why a payload could not be written (messages are upstream's; I/O errors read as Go's
/// `op path: reason`).
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    #[error("invalid path: must not be empty: \"\"")]
    EmptyPath,
    #[error("invalid path: must be relative path: {0}")]
    Absolute(String),
    #[error("invalid path: must be less than or equal to {MAX_PATH_LEN} characters")]
    PathTooLong,
    #[error("invalid path: must not contain '..': {0}")]
    Backstep(String),
    #[error("invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LEN} characters")]
    NameTooLong,
    #[error("invalid path: must not start with '..': {0}")]
    ReservedPrefix(String),
    #[error("{op} {}: {}", .path.display(), go_error_text(.source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AtomicWriteError + use<> {
    let path = path.to_path_buf();
    move |source| AtomicWriteError::Io { op, path, source }
}

/// Upstream's `validatePath`.
fn validate_path(path: &str) -> Result<(), AtomicWriteError> {
    if path.is_empty() {
        return Err(AtomicWriteError::EmptyPath);
    }
    if path.starts_with('/') {
        return Err(AtomicWriteError::Absolute(path.to_string()));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(AtomicWriteError::PathTooLong);
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(AtomicWriteError::Backstep(path.to_string()));
        }
        if item.len() > MAX_FILE_NAME_LEN {
            return Err(AtomicWriteError::NameTooLong);
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(AtomicWriteError::ReservedPrefix(path.to_string()));
    }
    Ok(())
}

/// Go's `filepath.Clean` for a relative path without `..` elements.
fn clean(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() { ".".to_string() } else { parts.join("/") }
}

/// The payload with validated, cleaned paths.
fn validate_payload(payload: &Payload) -> Result<Payload, AtomicWriteError> {
    let mut clean_payload = Payload::new();
    for (path, file) in payload {
        validate_path(path)?;
        clean_payload.insert(clean(path), file.clone());
    }
    Ok(clean_payload)
}

/// Every path under `root` (files and directories), relative to it.
fn walk(root: &Path) -> io::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(child.clone());
            }
            found.insert(child.to_string_lossy().into_owned());
        }
    }
    Ok(found)
}

/// Removes a file, a symlink or an empty directory, as Go's `os.Remove`.
fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if path.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false) => std::fs::remove_dir(path).map_err(|_| e),
        other => other,
    }
}

/// Writes payloads into one volume directory.
#[derive(Debug, Clone)]
pub struct AtomicWriter {
    target_dir: PathBuf,
}

impl AtomicWriter {
    /// A writer for `target_dir`, which must exist.
    pub fn new(target_dir: &Path) -> Result<Self, AtomicWriteError> {
        std::fs::metadata(target_dir).map_err(io_error("stat", target_dir))?;
        Ok(AtomicWriter { target_dir: target_dir.to_path_buf() })
    }

    /// Projects `payload` into the directory; returns whether the data changed (a new
    /// timestamped directory was published). Not safe to call concurrently for one directory.
    pub fn write(&self, payload: &Payload) -> Result<bool, AtomicWriteError> {
        let payload = validate_payload(payload)?;
        let data_dir = self.target_dir.join(DATA_DIR);
        let mut old_ts_dir = match std::fs::read_link(&data_dir) {
            Ok(target) => Some(target),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error("readlink", &data_dir)(e)),
        };

        let mut paths_to_remove = BTreeSet::new();
        let mut should_write = true;
        if let Some(old) = &old_ts_dir {
            let old_path = self.target_dir.join(old);
            paths_to_remove = self.paths_to_remove(&payload, &old_path)?;
            if !payload_differs(&payload, &old_path)? && paths_to_remove.is_empty() {
                // Up to date; the user-visible links are still checked below.
                should_write = false;
                old_ts_dir = None;
            }
        }

        let mut written = false;
        if should_write {
            let ts_dir = self.new_timestamp_dir()?;
            let ts_name = ts_dir.file_name().map(PathBuf::from).unwrap_or_default();
            let published = self.write_payload(&payload, &ts_dir).and_then(|()| {
                let new_data_dir = self.target_dir.join(NEW_DATA_DIR);
                // A link left by an interrupted write would make symlink fail for good.
                let _ = std::fs::remove_file(&new_data_dir);
                symlink(&ts_name, &new_data_dir).map_err(io_error("symlink", &new_data_dir))?;
                std::fs::rename(&new_data_dir, &data_dir).map_err(|e| {
                    let _ = std::fs::remove_file(&new_data_dir);
                    io_error("rename", &new_data_dir)(e)
                })
            });
            if let Err(e) = published {
                let _ = std::fs::remove_dir_all(&ts_dir);
                return Err(e);
            }
            written = true;
        }

        self.create_user_visible_files(&payload)?;
        self.remove_user_visible_paths(&paths_to_remove)?;
        if let Some(old) = old_ts_dir {
            let old_path = self.target_dir.join(old);
            std::fs::remove_dir_all(&old_path).map_err(io_error("remove", &old_path))?;
        }
        Ok(written)
    }

    /// Paths of the old version that the new payload no longer has (its files and every
    /// parent directory of them are kept).
    fn paths_to_remove(&self, payload: &Payload, old_ts_path: &Path) -> Result<BTreeSet<String>, AtomicWriteError> {
        let old = match walk(old_ts_path) {
            Ok(paths) => paths,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io_error("lstat", old_ts_path)(e)),
        };
        let mut new_paths = BTreeSet::new();
        for file in payload.keys() {
            let mut sub = file.as_str();
            loop {
                new_paths.insert(sub.to_string());
                match sub.rfind('/') {
                    Some(slash) => sub = &sub[..slash],
                    None => break,
                }
            }
        }
        Ok(old.difference(&new_paths).cloned().collect())
    }

    /// A new `..<UTC timestamp>.<random>` directory with mode 0755.
    fn new_timestamp_dir(&self) -> Result<PathBuf, AtomicWriteError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.").to_string();
        loop {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
            let suffix = nanos.wrapping_mul(2_654_435_761) ^ std::process::id() ^ COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = self.target_dir.join(format!("{stamp}{suffix}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(io_error("chmod", &dir))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("mkdir", &dir)(e)),
            }
        }
    }

    fn write_payload(&self, payload: &Payload, dir: &Path) -> Result<(), AtomicWriteError> {
        for (path, file) in payload {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(io_error("mkdir", parent))?;
            }
            std::fs::write(&full, &file.data).map_err(io_error("open", &full))?;
            // The umask does not decide the mode.
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode)).map_err(io_error("chmod", &full))?;
        }
        Ok(())
    }

    /// `name -> ..data/name` for each top-level name of the payload that has no link yet.
    fn create_user_visible_files(&self, payload: &Payload) -> Result<(), AtomicWriteError> {
        for path in payload.keys() {
            let top = path.split('/').next().unwrap_or(path);
            let visible = self.target_dir.join(top);
            if let Err(e) = std::fs::read_link(&visible)
                && e.kind() == io::ErrorKind::NotFound
            {
                symlink(Path::new(DATA_DIR).join(top), &visible).map_err(io_error("symlink", &visible))?;
            }
        }
        Ok(())
    }

    /// Removes the top-level links of paths that went away (nested paths go with their
    /// timestamped directory).
    fn remove_user_visible_paths(&self, paths: &BTreeSet<String>) -> Result<(), AtomicWriteError> {
        let mut last = None;
        for p in paths.iter().filter(|p| !p.contains('/')) {
            let path = self.target_dir.join(p);
            if let Err(e) = remove(&path) {
                tracing::warn!(path = %path.display(), error = %e, "pruning an old user-visible path");
                last = Some(io_error("remove", &path)(e));
            }
        }
        last.map_or(Ok(()), Err)
    }
}

/// Whether any payload file is missing from the old version or has other bytes.
fn payload_differs(payload: &Payload, old_ts_path: &Path) -> Result<bool, AtomicWriteError> {
    for (path, file) in payload {
        let on_disk = old_ts_path.join(path);
        match std::fs::read(&on_disk) {
            Ok(bytes) if bytes == file.data => {}
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_error("open", &on_disk)(e)),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str, i32)]) -> Payload {
        files.iter().map(|(p, d, m)| (p.to_string(), FileProjection::new(d.as_bytes(), *m))).collect()
    }

    /// The visible tree, as a container sees it (the volume tests' walk).
    use super::super::tests::files as visible;

    fn ts_dirs(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_DIR)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_updates_and_removes_keys() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let w = AtomicWriter::new(dir).expect("writer");

        struct Step {
            payload: Payload,
            written: bool,
            want: Vec<(&'static str, &'static str, u32)>,
        }
        let steps = [
            Step {
                payload: payload(&[("a", "1", 0o644), ("sub/b", "2", 0o400), ("./c", "3", 0o600)]),
                written: true,
                want: vec![("a", "1", 0o644), ("c", "3", 0o600), ("sub/b", "2", 0o400)],
            },
            // The same payload: nothing published.
            Step {
                payload: payload(&[("a", "1", 0o644), ("sub/b", "2", 0o400), ("c", "3", 0o600)]),
                written: false,
                want: vec![("a", "1", 0o644), ("c", "3", 0o600), ("sub/b", "2", 0o400)],
            },
            // A changed value, a removed key, a new key.
            Step {
                payload: payload(&[("a", "one", 0o644), ("sub/b", "2", 0o400), ("d", "4", 0o644)]),
                written: true,
                want: vec![("a", "one", 0o644), ("d", "4", 0o644), ("sub/b", "2", 0o400)],
            },
            // The nested directory goes away.
            Step { payload: payload(&[("a", "one", 0o644)]), written: true, want: vec![("a", "one", 0o644)] },
            Step { payload: Payload::new(), written: true, want: vec![] },
        ];
        for (i, step) in steps.iter().enumerate() {
            let before = std::fs::read_link(dir.join(DATA_DIR)).ok();
            assert_eq!(w.write(&step.payload).expect("write"), step.written, "step {i}");
            let got = visible(dir);
            let want: BTreeMap<String, (String, u32)> = step.want.iter().map(|(p, d, m)| (p.to_string(), (d.to_string(), *m))).collect();
            assert_eq!(got, want, "step {i}");
            let data = std::fs::read_link(dir.join(DATA_DIR)).expect("..data is a link");
            assert_eq!(ts_dirs(dir), vec![data.to_string_lossy().into_owned()], "step {i}: one timestamped dir, the current one");
            if !step.written {
                assert_eq!(Some(data), before, "step {i}: ..data unchanged");
            }
            let ts = ts_dirs(dir).remove(0);
            assert!(ts.starts_with("..20") && ts.len() > "..2025_01_01_00_00_00.".len(), "{ts}");
            assert_eq!(std::fs::metadata(dir.join(&ts)).expect("ts").permissions().mode() & 0o777, 0o755);
        }
        // Top-level names are links through ..data.
        w.write(&payload(&[("k", "v", 0o644), ("s/t", "u", 0o644)])).expect("write");
        assert_eq!(std::fs::read_link(dir.join("k")).expect("link"), Path::new("..data/k"));
        assert_eq!(std::fs::read_link(dir.join("s")).expect("link"), Path::new("..data/s"));
    }

    #[test]
    fn missing_links_are_recreated_without_a_write() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path()).expect("writer");
        let p = payload(&[("a", "1", 0o644)]);
        w.write(&p).expect("write");
        std::fs::remove_file(tmp.path().join("a")).expect("rm link");
        assert!(!w.write(&p).expect("write"), "data unchanged");
        assert_eq!(std::fs::read_to_string(tmp.path().join("a")).expect("read"), "1");
    }

    #[test]
    fn invalid_paths() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path()).expect("writer");
        let long = "x".repeat(256);
        let table = [
            ("", "invalid path: must not be empty: \"\""),
            ("/etc/passwd", "invalid path: must be relative path: /etc/passwd"),
            ("a/../b", "invalid path: must not contain '..': a/../b"),
            ("..data", "invalid path: must not start with '..': ..data"),
            (long.as_str(), "invalid path: filenames must be less than or equal to 255 characters"),
        ];
        for (path, want) in table {
            let err = w.write(&payload(&[(path, "x", 0o644)])).expect_err(path);
            assert_eq!(err.to_string(), want);
        }
        assert!(w.write(&payload(&[("..", "x", 0o644)])).is_err());
        assert_eq!(
            AtomicWriter::new(&tmp.path().join("absent")).expect_err("absent").to_string(),
            format!("stat {}: no such file or directory", tmp.path().join("absent").display())
        );
    }
}
