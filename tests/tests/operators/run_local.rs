//! `make run` as a user runs it in a terminal, and stops it: Ctrl-C (SIGINT
//! to the foreground process group), or SIGTERM to the group, stops every
//! process of the stack it started (etcd, kube-apiserver,
//! kube-controller-manager, the operator, Envoy, the echo upstream), and make
//! returns only once they are gone. Each run keeps its state in a directory of
//! its own (`LEGATE_RUN_DIR`) and takes free ports, so it runs beside other
//! tests and beside a user's own `make run`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use legate_tests::workspace;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The names of the pid files the stack writes, and where: what must be
/// running while it runs, and gone once it stopped.
const PID_FILES: [&str; 6] = [
    "run/echo.pid",
    "run/envoy.pid",
    "run/legate.pid",
    "controlplane/pids/etcd.pid",
    "controlplane/pids/kube-apiserver.pid",
    "controlplane/pids/kube-controller-manager.pid",
];

/// A process as `/proc` shows it: its start time (which tells it from a later
/// process with the same pid) and its process group; `None` once it is gone
/// or a zombie (it has exited; only its parent has yet to reap it).
fn process(pid: u32) -> Option<(u64, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after "pid (comm) ", from the state on.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((fields.get(19)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

/// Every live process that names `dir` on its command line or holds a file
/// under it open (its log), with its start time and command.
fn processes_using(dir: &Path) -> BTreeMap<u32, (u64, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = BTreeMap::new();
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let holds_a_file = std::fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy().contains(&needle))
            });
        if (cmdline.contains(&needle) || holds_a_file)
            && let Some((start, _)) = process(pid)
        {
            found.insert(pid, (start, cmdline));
        }
    }
    found
}

/// `make run`, started in a process group of its own with SIGINT and SIGTERM
/// at their defaults (as in a terminal); on drop, whatever is left of it is
/// stopped, so a failing test leaves nothing running.
struct MakeRun {
    child: Child,
    dir: PathBuf,
    /// Everything make and the script printed, stdout and stderr.
    output: Arc<Mutex<String>>,
    /// Lines of stdout, as they come.
    lines: mpsc::Receiver<String>,
}

impl MakeRun {
    #[allow(unsafe_code)]
    fn start(dir: &Path) -> MakeRun {
        let operator = legate_tests::operator::binary().unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new("make");
        command
            .arg("-C")
            .arg(workspace::root())
            .arg("run")
            .env("LEGATE_RUN_DIR", dir)
            // The binaries this test binary was built with: nothing to build
            // while others may hold cargo's lock.
            .env("LEGATE_BIN", operator)
            .env("LEGATE_ECHO_BIN", env!("CARGO_BIN_EXE_legate-echo"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (sigaction).
        unsafe {
            command.pre_exec(|| {
                use nix::sys::signal::{SigHandler, signal};
                for sig in [Signal::SIGINT, Signal::SIGTERM] {
                    signal(sig, SigHandler::SigDfl).map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting make run: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let keep = |output: &Arc<Mutex<String>>, line: &str| {
            if let Ok(mut all) = output.lock() {
                all.push_str(line);
                all.push('\n');
            }
        };
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep(&out, &line);
                let _ = send.send(line);
            }
        });
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep(&out, &line);
            }
        });
        MakeRun {
            child,
            dir: dir.to_path_buf(),
            output,
            lines,
        }
    }

    fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn group(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the line `curl -s http://ADDRESS/PATH` that the script
    /// prints once the stack runs; returns `(ADDRESS, PATH)`.
    fn wait_for_the_curl(&self, timeout: Duration) -> (String, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("curl -s http://")
                        && let Some((address, path)) = url.split_once('/')
                    {
                        return (address.to_string(), format!("/{path}"));
                    }
                }
                Err(_) => panic!("make run printed no curl within {timeout:?}:\n{}", self.output()),
            }
        }
    }

    /// Waits for make to exit; its status.
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for make") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "make run did not exit within {timeout:?} of the signal:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MakeRun {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(self.group(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        if self.dir.exists() {
            let _ = Command::new(workspace::root().join("tests/stack.sh"))
                .arg("down")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One HTTP/1.1 GET; the whole answer.
fn get(address: &str, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn stops_every_process(signal: Signal) {
    let parent = tempfile::tempdir().expect("a temp dir");
    let dir = parent.path().join("stack");
    let mut run = MakeRun::start(&dir);

    // The stack answers: the route of the example Mapping reaches the echo server.
    let (address, path) = run.wait_for_the_curl(Duration::from_secs(600));
    let answer = get(&address, &path).unwrap_or_else(|e| panic!("GET http://{address}{path}: {e}"));
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("quote-1"),
        "the curl that make run printed answers 200 from the echo server:\n{answer}"
    );

    // Every process of the stack, by its pid file, and anything else using the run's directory.
    let mut started: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    for file in PID_FILES {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("make run wrote no {file}: {e}\n{}", run.output()));
        let pid: u32 = text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{file}: {text:?}: {e}"));
        let (start, _) =
            process(pid).unwrap_or_else(|| panic!("{file} names pid {pid}, which is not running"));
        started.insert(pid, (start, file.to_string()));
    }
    started.extend(processes_using(&dir));
    let group = run.group();

    killpg(group, signal).unwrap_or_else(|e| panic!("{signal} to make run's process group: {e}"));
    let status = run.wait(Duration::from_secs(120));
    let output = run.output();

    // The moment make returned, nothing of the stack was left.
    let survivors: Vec<String> = started
        .iter()
        .filter(|(pid, (start, _))| process(**pid).is_some_and(|(s, _)| s == *start))
        .map(|(pid, (_, what))| format!("{pid} ({what})"))
        .collect();
    assert!(
        survivors.is_empty(),
        "after {signal}, make run left {survivors:?} running:\n{output}"
    );
    let in_group: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process(*pid).is_some_and(|(_, g)| g == group.as_raw()))
        .collect();
    assert!(
        in_group.is_empty(),
        "processes of make run's group are left: {in_group:?}\n{output}"
    );
    let using = processes_using(&dir);
    assert!(
        using.is_empty(),
        "processes still use {}: {using:?}\n{output}",
        dir.display()
    );
    assert!(!dir.exists(), "the run's directory is removed:\n{output}");
    assert!(output.contains("run: stopped"), "{output}");
    assert!(
        !status.success(),
        "make says it was interrupted: {status}\n{output}"
    );
}

#[test]
fn ctrl_c_stops_every_process_of_make_run() {
    stops_every_process(Signal::SIGINT);
}

#[test]
fn sigterm_stops_every_process_of_make_run() {
    stops_every_process(Signal::SIGTERM);
}
