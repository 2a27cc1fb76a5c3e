//! hostPath volumes: a file or directory of the node, mounted as it is
//! (pkg/volume/hostpath). Setting one up only checks its `type` (creating it for the
//! `...OrCreate` types).

use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::HostPathVolumeSource;

use super::Error;

/// Checks `source.path` against `source.type` as upstream's `checkType`.
pub(super) fn set_up(source: &HostPathVolumeSource) -> Result<(), Error> {
    let path = source.path.as_str();
    if path.split('/').any(|part| part == "..") {
        return Err(Error::HostPathBackstep(path.to_string()));
    }
    let kind = source.type_.as_deref().unwrap_or("");
    let file_type = || std::fs::metadata(path).ok().map(|m| m.file_type());
    let is = |what: &'static str, check: fn(&std::fs::FileType) -> bool| {
        if file_type().is_some_and(|t| check(&t)) { Ok(()) } else { Err(Error::HostPathType { path: path.to_string(), what }) }
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if file_type().is_none() => make_dir(path),
        "DirectoryOrCreate" | "Directory" => is("directory", std::fs::FileType::is_dir),
        "FileOrCreate" if file_type().is_none() => make_file(path),
        "FileOrCreate" | "File" => is("file", std::fs::FileType::is_file),
        "Socket" => is("socket file", FileTypeExt::is_socket),
        "CharDevice" => is("character device", FileTypeExt::is_char_device),
        "BlockDevice" => is("block device", FileTypeExt::is_block_device),
        other => Err(Error::HostPathInvalidType(other.to_string())),
    }
}

/// `mkdir -p` with mode 0755; an existing directory is fine.
fn make_dir(path: &str) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o755).create(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(Error::io("mkdir", Path::new(path))(e)),
        _ => Ok(()),
    }
}

/// Creates an empty file with mode 0644; an existing file or directory is fine.
fn make_file(path: &str) -> Result<(), Error> {
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o644).open(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists && e.kind() != io::ErrorKind::IsADirectory => {
            Err(Error::io("open", Path::new(path))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_checks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().display().to_string();
        let file = format!("{dir}/file");
        std::fs::write(&file, "x").expect("file");
        let socket = format!("{dir}/sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("socket");
        let absent = format!("{dir}/absent");
        let table: Vec<(String, &str, Result<(), String>)> = vec![
            (absent.clone(), "", Ok(())),
            (dir.clone(), "Directory", Ok(())),
            (file.clone(), "Directory", Err(format!("hostPath type check failed: {file} is not a directory"))),
            (absent.clone(), "Directory", Err(format!("hostPath type check failed: {absent} is not a directory"))),
            (file.clone(), "File", Ok(())),
            (dir.clone(), "File", Err(format!("hostPath type check failed: {dir} is not a file"))),
            (socket.clone(), "Socket", Ok(())),
            (file.clone(), "Socket", Err(format!("hostPath type check failed: {file} is not a socket file"))),
            ("/dev/null".into(), "CharDevice", Ok(())),
            (file.clone(), "CharDevice", Err(format!("hostPath type check failed: {file} is not a character device"))),
            ("/dev/null".into(), "BlockDevice", Err("hostPath type check failed: /dev/null is not a block device".into())),
            (file.clone(), "DirectoryOrCreate", Err(format!("hostPath type check failed: {file} is not a directory"))),
            (dir.clone(), "FileOrCreate", Err(format!("hostPath type check failed: {dir} is not a file"))),
            (file.clone(), "Fifo", Err("Fifo is an invalid volume type".into())),
            (format!("{dir}/../x"), "", Err(format!("invalid HostPath `{dir}/../x`: must not contain '..'"))),
        ];
        for (path, kind, want) in table {
            let source = HostPathVolumeSource { path: path.clone(), type_: Some(kind.to_string()) };
            assert_eq!(set_up(&source).map_err(|e| e.to_string()), want, "{path} {kind}");
        }
        let made = HostPathVolumeSource { path: format!("{dir}/made/deep"), type_: Some("DirectoryOrCreate".into()) };
        set_up(&made).expect("created");
        assert!(Path::new(&made.path).is_dir());
        let touched = HostPathVolumeSource { path: format!("{dir}/made/f"), type_: Some("FileOrCreate".into()) };
        set_up(&touched).expect("created");
        assert_eq!(std::fs::read(&touched.path).expect("file"), b"");
        set_up(&touched).expect("again");
    }
}
