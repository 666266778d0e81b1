//! Capacity of the file system under a log directory, for DescribeLogDirs.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// (total bytes, bytes usable by this process) of the file system holding `dir`.
// statvfs's field types differ between platforms (u32 or u64), hence the `into`s.
#[allow(clippy::useless_conversion)]
pub fn capacity(dir: &Path) -> std::io::Result<(u64, u64)> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to writable memory of
    // the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: initialised by the successful call above.
    let stat = unsafe { stat.assume_init() };
    Ok(sizes(
        stat.f_frsize.into(),
        stat.f_blocks.into(),
        stat.f_bavail.into(),
    ))
}

/// (total, usable) bytes from statvfs's fragment size and block counts.
fn sizes(fragment: u64, blocks: u64, available: u64) -> (u64, u64) {
    (
        blocks.saturating_mul(fragment),
        available.saturating_mul(fragment),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_real_directory_has_capacity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (total, usable) = super::capacity(dir.path()).expect("statvfs");
        assert!(total > 0 && usable <= total);
        assert!(super::capacity(&dir.path().join("missing")).is_err());
    }
}
