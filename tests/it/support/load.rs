//! CPU load for the tests of races (issue 22): one busy `yes` per core while a test runs, as
//! the developers' rule asks of anything with timing in it. Stopped when dropped.

use std::process::{Child, Command, Stdio};

pub struct CpuLoad {
    busy: Vec<Child>,
}

impl CpuLoad {
    #[track_caller]
    pub fn start() -> CpuLoad {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let busy = (0..cores)
            .map(|_| {
                Command::new("yes")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("`yes` starts (coreutils)")
            })
            .collect();
        CpuLoad { busy }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        for child in &mut self.busy {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
