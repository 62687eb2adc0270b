//! A tiny real file system to fill: a tmpfs of a given size mounted on a fresh directory (the
//! tests run as root), unmounted when dropped. Mounted 0700, as an audit dir must be.

use std::io::Write;
use std::path::Path;
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `mount -t tmpfs -o size=SIZE,mode=0700 tmpfs DIR`, e.g. `size` = `"256k"`.
    #[track_caller]
    pub fn mount(size: &str) -> Tmpfs {
        Tmpfs::mount_with(&format!("size={size},mode=0700"))
    }

    /// The same with other mount options (`ro`, ...).
    #[track_caller]
    pub fn mount_with(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mount = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            mount.success(),
            "this test mounts a tmpfs ({options}) and needs root (CI runs as root)"
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the file system refuses more (ENOSPC): nothing else fits.
    #[track_caller]
    pub fn fill(&self, name: &str) {
        let mut file = std::fs::File::create(self.path().join(name)).unwrap();
        let chunk = vec![b'x'; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Whatever is left of a page (a partial write) too.
        while file.write(b"x").is_ok_and(|n| n > 0) {}
    }

    /// Gives back the last `bytes` of `name` (whole pages: 4096 each), so exactly that much
    /// fits again.
    #[track_caller]
    pub fn free(&self, name: &str, bytes: u64) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path().join(name))
            .unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(bytes)).unwrap();
        file.sync_all().unwrap();
        assert_eq!(self.available(), bytes, "the tmpfs has exactly what was freed");
    }

    /// The bytes still free (`statvfs`).
    pub fn available(&self) -> u64 {
        let path = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid C string and a zeroed out-parameter of the right type.
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail as u64 * stat.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
