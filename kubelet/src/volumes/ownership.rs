//! A pod's `fsGroup` applied to its volumes, as upstream's `SetVolumeOwnership`: every file
//! and directory becomes group-owned by the fsGroup, files gain group read (and write, for
//! writable volumes), directories also group execute and setgid, so new files inherit the
//! group. Links are re-owned but keep their mode.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The mode `mode` becomes under an fsGroup.
pub fn mode_with_group(mode: u32, is_dir: bool, read_only: bool) -> u32 {
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if is_dir {
        mask |= SETGID | EXEC_MASK;
    }
    mode | mask
}

/// Gives everything under `dir` (and `dir` itself) to group `gid`.
pub fn set(dir: &Path, gid: u32, read_only: bool) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    std::os::unix::fs::lchown(dir, None, Some(gid))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = mode_with_group(meta.permissions().mode() & 0o7777, meta.is_dir(), read_only);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            set(&entry?.path(), gid, read_only)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn modes_gain_group_bits() {
        let table = [(0o400, false, true, 0o440), (0o644, false, false, 0o664), (0o755, true, true, 0o2755), (0o700, true, false, 0o2770)];
        for (mode, dir, ro, want) in table {
            assert_eq!(mode_with_group(mode, dir, ro), want, "{mode:o} dir={dir} ro={ro}");
        }
    }

    #[test]
    fn a_tree_is_given_to_the_group() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("..data_x");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("key"), b"v").expect("write");
        std::fs::set_permissions(data.join("key"), std::fs::Permissions::from_mode(0o400)).expect("chmod");
        std::os::unix::fs::symlink("..data_x/key", dir.path().join("key")).expect("link");
        set(dir.path(), 1234, true).expect("ownership");
        let file = std::fs::metadata(data.join("key")).expect("stat");
        assert_eq!((file.gid(), file.mode() & 0o7777), (1234, 0o440));
        assert_eq!(std::fs::symlink_metadata(dir.path().join("key")).expect("lstat").gid(), 1234);
        assert_eq!(std::fs::metadata(&data).expect("stat").mode() & 0o2000, 0o2000);
    }
}
