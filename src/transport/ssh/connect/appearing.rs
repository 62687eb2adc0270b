//! Knowing the moment a master's control socket appears, without a look every few ms.

use std::path::Path;

/// An inotify watch for files appearing in one directory: the run learns that a master is
/// ready as soon as its control socket is there, instead of at the next look (~10 ms sooner
/// on average, per host, with no process spent on it).
///
/// Closing an inotify descriptor waits for the kernel to retire its watches (an SRCU grace
/// period: 5–15 ms on a busy machine). Closed on the runtime's thread, the 50 watches of a
/// fleet held it for ~400 ms in all while ready masters waited to be noticed and the cores
/// idled (issue 30); they are closed on a blocking thread instead, where the waits overlap.
pub(super) struct Appearing {
    /// Always `Some` until `Drop` takes it.
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Appearing {
    /// `None` where inotify is not to be had: the socket is then only looked for.
    pub(super) fn watch(dir: &Path) -> Option<Appearing> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
        )
        .ok()?;
        // SAFETY: an `OwnedFd` is a valid open descriptor, the same one for as long as it
        // lives, and it lives inside the `AsyncFd`.
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .ok()
            .map(|fd| Appearing { fd: Some(fd) })
    }
}

impl Drop for Appearing {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        // Out of the runtime's reactor here; closed elsewhere.
        drop(close_aside(fd.into_inner()));
    }
}

/// Closes `fd` on one of the runtime's blocking threads (or here, outside a runtime); the
/// handle says which thread closed it.
fn close_aside(fd: std::os::fd::OwnedFd) -> Option<tokio::task::JoinHandle<std::thread::ThreadId>> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        drop(fd);
        return None;
    };
    Some(runtime.spawn_blocking(move || {
        drop(fd);
        std::thread::current().id()
    }))
}

/// Resolves when a file named `name` appears under `watch`; pending forever without a watch,
/// or once it fails.
pub(super) async fn appeared(watch: &mut Option<Appearing>, name: &str) {
    loop {
        let Some(fd) = watch.as_ref().and_then(|w| w.fd.as_ref()) else {
            return std::future::pending().await;
        };
        let Ok(mut ready) = fd.readable().await else {
            *watch = None;
            continue;
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut events = rustix::fs::inotify::Reader::new(fd.get_ref(), &mut buf);
        let mut seen = false;
        loop {
            match events.next() {
                Ok(event) => seen |= event.file_name().is_some_and(|n| n.to_bytes() == name.as_bytes()),
                Err(rustix::io::Errno::AGAIN) => {
                    ready.clear_ready();
                    break;
                }
                Err(_) => {
                    *watch = None;
                    break;
                }
            }
        }
        if seen {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inotify descriptors this process has open.
    fn watches_open() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify"))
            .count()
    }

    #[test]
    fn a_watch_let_go_is_closed_beside_the_runtime_thread_and_closed_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let before = watches_open();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (runtime_thread, closer) = runtime.block_on(async {
            let watch = Appearing::watch(dir.path()).expect("inotify");
            assert_eq!(watches_open(), before + 1);
            drop(watch);
            let other = Appearing::watch(dir.path()).expect("inotify");
            let fd = other
                .fd
                .as_ref()
                .map(|fd| fd.get_ref().try_clone().unwrap())
                .unwrap();
            drop(other);
            let closer = close_aside(fd).expect("inside a runtime").await.unwrap();
            (std::thread::current().id(), closer)
        });
        assert_ne!(closer, runtime_thread, "the runtime's thread closed it");
        // The runtime waits for its blocking threads as it ends: every watch is closed by then.
        drop(runtime);
        assert_eq!(watches_open(), before);
        // Outside a runtime it is closed on the spot.
        let fd = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::CLOEXEC).unwrap();
        assert_eq!(watches_open(), before + 1);
        assert!(close_aside(fd).is_none());
        assert_eq!(watches_open(), before);
    }
}
