//! The scenario sandbox: a small, real production stand-in for the shipped runbooks, reached over
//! the real sshd fixture as the unprivileged user `rbtest`. Each test gets its own:
//!
//! - a PostgreSQL cluster (initdb in a temporary directory, listening on 127.0.0.1 and a socket
//!   directory, free port) with a database `app` (owner `app`) holding `leads` and `deals`, and a
//!   backup of it made with `pg_dump | gzip` in `backups/`;
//! - the application (`tests/sandbox/app/app.py`, Python standard library) in a git repository
//!   `srv/app` with tags `v1.0.0` (good) and `v1.1.0` (broken: `/health` answers 500), checked
//!   out at `v1.0.0`, whose commit is in `.last_good_sha`;
//! - two LLM provider stand-ins (`llm-primary`, `llm-fallback`);
//! - the systemctl/journalctl stand-in (`tests/sandbox/bin/systemctl`) that starts, stops and
//!   reports all four as units. The runbooks reach it through their `sudo` input, which the tests
//!   set to `env PATH=<sandbox>/bin:...` (see [`Sandbox::value`]).
//!
//! Missing tools fail loudly with what to install: these tests are never skipped.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cmd::{Run, root, runbook};
use super::sshd::{Sshd, USER};

/// The key both LLM provider stand-ins accept at start, and the app's `.env` holds.
pub const LLM_KEY: &str = "sandbox-key-1";

pub struct Sandbox {
    pub sshd: Sshd,
    pub pg_port: u16,
    pub api_port: u16,
    pub primary_port: u16,
    pub fallback_port: u16,
    /// Where audit files of the tests' runs go.
    pub audit: TempDir,
    dir: TempDir,
    pg_bin: PathBuf,
}

impl Sandbox {
    #[track_caller]
    pub fn start() -> Sandbox {
        let pg_bin = prerequisites().clone();
        let sshd = Sshd::start();
        let dir = tempfile::Builder::new()
            .prefix("rb-sbx-")
            .tempdir()
            .expect("create the sandbox directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let sb = Sandbox {
            sshd,
            pg_port: free_port(),
            api_port: free_port(),
            primary_port: free_port(),
            fallback_port: free_port(),
            audit: tempfile::tempdir().unwrap(),
            dir,
            pg_bin,
        };
        sb.lay_out();
        sb.init_postgres();
        sb.init_repo();
        for unit in ["llm-primary", "llm-fallback", "app-api"] {
            sb.systemctl(&["start", unit]);
        }
        let (code, body) = sb.http_get("/health");
        assert_eq!(code, 200, "the sandbox app is not healthy after start: {body}");
        sb
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn app_dir(&self) -> PathBuf {
        self.root().join("srv/app")
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.root().join("backups")
    }

    /// The sandbox's value for a runbook input, where production's default does not fit.
    pub fn value(&self, input: &str) -> Option<String> {
        let root = self.root().display();
        let pg = self.pg_port;
        Some(match input {
            // Root is not needed in the sandbox: `$sudo systemctl ...` becomes `env PATH=...
            // systemctl ...`, which finds the stand-in first.
            "sudo" => format!("env PATH={root}/bin:/usr/local/bin:/usr/bin:/bin"),
            "psql" => format!("env PGHOST={root}/run PGPORT={pg} PGDATABASE=postgres psql"),
            "pg_dump" => format!("env PGHOST={root}/run PGPORT={pg} pg_dump"),
            // The app needs only the standard library; pip still reads its requirements.txt.
            "pip" => "env PIP_NO_INDEX=1 PIP_USER=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
                      PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip"
                .to_string(),
            "api_url" => format!("http://127.0.0.1:{}", self.api_port),
            "api_port" => self.api_port.to_string(),
            "app_dir" => format!("{root}/srv/app"),
            "backup_dir" => format!("{root}/backups"),
            "pg_data_dir" => format!("{root}/pgdata"),
            "snapshot_dir" => format!("{root}/tmp"),
            _ => return None,
        })
    }

    /// `runbook run|drill ID --yes` against this sandbox: every role bound to the sshd, every
    /// input the sandbox has a value for set (unless `sets` gives one), `answers` given.
    pub fn runbook(&self, command: &str, id: &str, sets: &[(&str, &str)], answers: &[&str]) -> Run {
        self.runbook_in(&root().join("runbooks"), command, id, sets, answers)
    }

    /// `runbook` with the catalog `dir` (a changed copy of the shipped one).
    pub fn runbook_in(
        &self,
        dir: &Path,
        command: &str,
        id: &str,
        sets: &[(&str, &str)],
        answers: &[&str],
    ) -> Run {
        let path = dir.join(format!("{id}.yaml"));
        let source = runbook::testing::parse::Source::read(&path).expect("read the runbook");
        let rb = source
            .parse()
            .unwrap_or_else(|d| panic!("{id} does not parse: {d:?}"));
        let mut run = runbook(["--dir"])
            .arg(dir)
            .arg("--audit-dir")
            .arg(self.audit.path())
            .args([command, id, "--yes", "--identity"])
            .arg(&self.sshd.identity)
            .arg("--known-hosts")
            .arg(&self.sshd.known_hosts)
            .arg("--ssh-config")
            .arg(&self.sshd.ssh_config);
        for role in rb.targets.keys() {
            run = run.arg("--target").arg(format!("{role}={}", self.sshd.dest()));
        }
        for name in rb.inputs.keys() {
            let value = sets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_string())
                .or_else(|| self.value(name));
            if let Some(value) = value {
                run = run.arg("--set").arg(format!("{name}={value}"));
            }
        }
        for answer in answers {
            run = run.arg("--answer").arg(answer);
        }
        run
    }

    /// Runs a shell script as `rbtest` in the sandbox's environment (the stand-ins first on the
    /// PATH, libpq pointed at the sandbox's cluster); returns the exit code and stdout+stderr.
    pub fn sh_status(&self, script: &str) -> (i32, String) {
        let out = Command::new("runuser")
            .args(["-u", USER, "--", "env", "-i"])
            .arg("HOME=/home/rbtest")
            .arg(format!(
                "PATH={}/bin:/usr/local/bin:/usr/bin:/bin",
                self.root().display()
            ))
            .arg(format!("PGHOST={}/run", self.root().display()))
            .arg(format!("PGPORT={}", self.pg_port))
            .arg("PGDATABASE=app")
            .args(["sh", "-c", script])
            .current_dir(self.root())
            .stdin(Stdio::null())
            .output()
            .expect("runuser starts");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    /// [`Sandbox::sh_status`] that must succeed; returns its trimmed output.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        let (code, text) = self.sh_status(script);
        assert_eq!(code, 0, "sandbox command failed: {script}\n{text}");
        text.trim().to_string()
    }

    #[track_caller]
    pub fn systemctl(&self, args: &[&str]) -> String {
        self.sh(&format!("systemctl {}", args.join(" ")))
    }

    /// `active`, `failed` or `inactive`.
    pub fn unit_state(&self, unit: &str) -> String {
        self.sh_status(&format!("systemctl is-active {unit}"))
            .1
            .trim()
            .to_string()
    }

    /// `leads=N deals=M` in database `db`.
    #[track_caller]
    pub fn counts(&self, db: &str) -> String {
        self.sh(&format!(
            "psql -tA -d {db} -c \"SELECT 'leads=' || (SELECT count(*) FROM leads) || ' deals=' || (SELECT count(*) FROM deals)\""
        ))
    }

    /// The commit the app's checkout is at.
    #[track_caller]
    pub fn head(&self) -> String {
        self.sh(&format!("git -C {} rev-parse HEAD", self.app_dir().display()))
    }

    #[track_caller]
    pub fn last_good(&self) -> String {
        fs::read_to_string(self.app_dir().join(".last_good_sha"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Checks out `rev` and restarts the app: a deploy.
    #[track_caller]
    pub fn deploy(&self, rev: &str) {
        self.sh(&format!(
            "git -C {} checkout -q --detach {rev}",
            self.app_dir().display()
        ));
        self.systemctl(&["restart", "app-api"]);
    }

    /// An HTTP GET to the app on 127.0.0.1: status code and body (0 when nothing answers).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http("GET", self.api_port, path)
    }

    pub fn http_post(&self, path: &str) -> (u16, String) {
        http("POST", self.api_port, path)
    }

    /// Rewrites a provider stand-in's unit with another accepted key and restarts it.
    #[track_caller]
    pub fn set_provider_key(&self, unit: &str, key: &str) {
        let port = if unit == "llm-primary" {
            self.primary_port
        } else {
            self.fallback_port
        };
        self.write_unit(unit, &self.provider_unit(port, key, unit));
        self.systemctl(&["restart", unit]);
    }

    pub fn log(&self, unit: &str) -> String {
        fs::read_to_string(self.root().join("log").join(format!("{unit}.log"))).unwrap_or_default()
    }

    fn lay_out(&self) {
        let root = self.root();
        for d in ["bin", "units", "run", "log", "lib", "backups", "srv/app", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let sandbox = crate::support::cmd::root().join("tests/sandbox");
        fs::copy(sandbox.join("bin/systemctl"), root.join("bin/systemctl")).unwrap();
        std::os::unix::fs::symlink("systemctl", root.join("bin/journalctl")).unwrap();
        fs::copy(sandbox.join("llm_provider.py"), root.join("lib/llm_provider.py")).unwrap();
        let bin = self.pg_bin.display();
        let r = root.display();
        self.write_unit(
            "postgresql",
            &format!(
                "exec_start=\"{bin}/postgres -D {r}/pgdata -p {pg} -k {r}/run -c listen_addresses=127.0.0.1 -c fsync=off\"\n\
                 ready=\"{bin}/pg_isready -q -h {r}/run -p {pg} -d postgres\"\nstop_signal=INT\n",
                pg = self.pg_port
            ),
        );
        self.write_unit(
            "app-api",
            &format!(
                "exec_start=\"python3 -u app.py\"\nworking_directory={r}/srv/app\n\
                 ready=\"curl -s -o /dev/null --max-time 1 http://127.0.0.1:{}/\"\n",
                self.api_port
            ),
        );
        self.write_unit(
            "llm-primary",
            &self.provider_unit(self.primary_port, LLM_KEY, "llm-primary"),
        );
        self.write_unit(
            "llm-fallback",
            &self.provider_unit(self.fallback_port, LLM_KEY, "llm-fallback"),
        );
        chown(root);
    }

    fn provider_unit(&self, port: u16, key: &str, name: &str) -> String {
        format!(
            "exec_start=\"python3 -u {r}/lib/llm_provider.py {port} {key} {name}\"\n\
             ready=\"curl -s -o /dev/null --max-time 1 http://127.0.0.1:{port}/\"\n",
            r = self.root().display()
        )
    }

    fn write_unit(&self, name: &str, text: &str) {
        let path = self.root().join("units").join(name);
        fs::write(&path, text).unwrap();
        chown(&path);
    }

    fn init_postgres(&self) {
        self.sh(&format!(
            "{}/initdb --no-sync -A trust -U {USER} -D {}/pgdata >/dev/null",
            self.pg_bin.display(),
            self.root().display()
        ));
        self.systemctl(&["start", "postgresql"]);
        let seed = crate::support::cmd::root().join("tests/sandbox/seed.sql");
        self.sh(&format!(
            "psql -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE ROLE app LOGIN' -c 'CREATE DATABASE app OWNER app' && \
             PGUSER=app psql -q -v ON_ERROR_STOP=1 -d app -f {}",
            seed.display()
        ));
        self.sh(&format!(
            "pg_dump app | gzip > {}/backups/daily_$(date +%Y%m%d).sql.gz",
            self.root().display()
        ));
    }

    /// The app's repository: v1.0.0 good, v1.1.0 broken (with a migration), at v1.0.0.
    fn init_repo(&self) {
        let app = self.app_dir();
        let source = crate::support::cmd::root().join("tests/sandbox/app/app.py");
        fs::copy(&source, app.join("app.py")).unwrap();
        fs::write(app.join("VERSION"), "1.0.0\n").unwrap();
        fs::write(
            app.join("requirements.txt"),
            "# the app needs only the Python standard library\n",
        )
        .unwrap();
        fs::write(app.join(".gitignore"), ".env\n.env.bak.*\n.last_good_sha\n").unwrap();
        fs::create_dir_all(app.join("migrations")).unwrap();
        fs::write(
            app.join("migrations/001_leads_deals.sql"),
            "-- leads and deals (tests/sandbox/seed.sql)\n",
        )
        .unwrap();
        fs::write(
            app.join(".env"),
            format!(
                "APP_PORT={api}\nPGHOST={r}/run\nPGPORT={pg}\nPGDATABASE=app\n\
                 LLM_PRIMARY_URL=http://127.0.0.1:{p}\nLLM_FALLBACK_URL=http://127.0.0.1:{f}\n\
                 LLM_FALLBACK_PROVIDER=fallback\nLLM_API_KEY={LLM_KEY}\n",
                api = self.api_port,
                r = self.root().display(),
                pg = self.pg_port,
                p = self.primary_port,
                f = self.fallback_port,
            ),
        )
        .unwrap();
        chown(&app);
        let git = "git -c user.name=sandbox -c user.email=sandbox@localhost";
        self.sh(&format!(
            "cd {} && git init -q && {git} add -A && {git} commit -qm 'Release 1.0.0' && {git} tag v1.0.0",
            app.display()
        ));
        fs::write(app.join("VERSION"), "1.1.0\n").unwrap();
        fs::write(app.join("BROKEN"), "release 1.1.0 fails every request\n").unwrap();
        fs::write(
            app.join("migrations/002_deal_stage.sql"),
            "ALTER TABLE deals ADD COLUMN stage text;\n",
        )
        .unwrap();
        chown(&app);
        self.sh(&format!(
            "cd {} && {git} add -A && {git} commit -qm 'Release 1.1.0' && {git} tag v1.1.0 && \
             git checkout -q --detach v1.0.0 && git rev-parse HEAD > .last_good_sha",
            app.display()
        ));
    }
}

impl Drop for Sandbox {
    /// Stops every unit still running (the pid files say which), PostgreSQL with an immediate
    /// shutdown, and waits for them before the directory goes.
    fn drop(&mut self) {
        let run = self.root().join("run");
        let mut pids = Vec::new();
        for entry in fs::read_dir(&run).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "pid") {
                continue;
            }
            let Some(pid) = fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let postgres = path.file_stem().is_some_and(|s| s == "postgresql");
            // SAFETY: kill(2) on a process this fixture's stand-in started.
            unsafe {
                libc::kill(pid, if postgres { libc::SIGQUIT } else { libc::SIGKILL });
            }
            pids.push(pid);
        }
        let until = Instant::now() + Duration::from_secs(5);
        for pid in pids {
            // SAFETY: signal 0 only checks that the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Holds a port the app wants, answering every connection by closing it: a port conflict.
pub struct PortSquatter {
    _listener: std::thread::JoinHandle<()>,
}

impl PortSquatter {
    pub fn hold(port: u16) -> PortSquatter {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("take the app's port");
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        PortSquatter { _listener: handle }
    }
}

/// postgres, python3 (with pip), git, curl, psql/pg_dump: found once, or a panic naming the
/// package to install. Returns PostgreSQL's server bin directory (the newest version).
#[track_caller]
fn prerequisites() -> &'static PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let mut bins: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists() && b.join("postgres").exists())
            .collect();
        bins.sort_by_key(|b| {
            b.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        let Some(bin) = bins.pop() else {
            return Err(
                "PostgreSQL is missing (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql".into(),
            );
        };
        let tools = [
            ("/usr/bin/python3", "python3"),
            ("/usr/bin/psql", "postgresql-client"),
            ("/usr/bin/pg_dump", "postgresql-client"),
            ("/usr/bin/curl", "curl"),
            ("/usr/bin/gzip", "gzip"),
        ];
        for (path, package) in tools {
            if !Path::new(path).exists() {
                return Err(format!("{path} is missing: apt-get install {package}"));
            }
        }
        let ok = |cmd: &mut Command| {
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(Command::new("/usr/bin/python3").args(["-m", "pip", "--version"])) {
            return Err("pip for /usr/bin/python3 is missing: apt-get install python3-pip".into());
        }
        if !ok(Command::new("sh").args(["-c", "PATH=/usr/local/bin:/usr/bin:/bin git --version"])) {
            return Err("git is missing: apt-get install git".into());
        }
        Ok(bin)
    });
    match found {
        Ok(bin) => bin,
        Err(e) => panic!("the scenario sandbox cannot start: {e}"),
    }
}

fn chown(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "chown {} to {USER} failed (the sandbox needs root)",
        path.display()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// A minimal HTTP/1.0 request: enough for the app's JSON endpoints, with no client crate.
fn http(method: &str, port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
