//! Debian's i386 Linux kernels, unmodified, booted with `--kernel --initrd
//! --append` under the interpreter to a busybox shell on the serial
//! console; commands typed on stdin are checked, and `poweroff -f` must end
//! the emulator with status 0. Under `--clock virtual` two runs of the same
//! session print byte-identical output.
//!
//! The guest is fetched (and cached) by `scripts/fetch-debian-guest.sh`. If
//! it cannot be had the test fails; outside CI, `OXIDE86_SKIP_LINUX_BOOT=1`
//! skips it on a machine without Debian's package tools.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use oxide86_testsuite::linux::{self, PROMPT};

/// Boot to the prompt, under a loaded 2-core CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(1200);
/// One command's output.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// What is typed at the shell, in order (then `poweroff -f`).
const SCRIPT: [&str; 6] = [
    "echo $((6*7))",
    "cat /proc/cpuinfo",
    "cat /proc/interrupts",
    "dmesg | grep -i -e error -e fail",
    "dmesg | grep -e Oops -e BUG: -e WARNING: -e 'Call Trace'",
    // Short enough that the shell's line editor does not wrap it.
    "echo on-tmpfs >/tmp/p && cat /tmp/p && wc -c </tmp/p",
];

/// Kernel messages that must never appear.
const BAD_LOG: [&str; 6] = [
    "Oops",
    "BUG:",
    "WARNING:",
    "Call Trace",
    "Kernel panic",
    "unable to open an initial console",
];

fn skip() -> bool {
    std::env::var_os("CI").is_none() && std::env::var_os("OXIDE86_SKIP_LINUX_BOOT").is_some()
}

/// A running emulator whose serial console is the pipe pair.
struct Session {
    child: Child,
    output: Receiver<Vec<u8>>,
    transcript: Vec<u8>,
    /// How much of the transcript earlier expectations consumed.
    seen: usize,
    name: String,
}

impl Session {
    /// Starts the emulator with `script` (and a final `poweroff -f`)
    /// already typed: the emulator hands typed lines to the guest only when
    /// it idles, so each reaches the shell at its next prompt, at the same
    /// instruction in every run.
    fn start(name: &str, kernel: &Path, initrd: &Path, append: &str, script: &[&str]) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxide86"))
            .args(["run", "--clock", "virtual", "--serial", "stdio", "--stats"])
            .arg("--kernel")
            .arg(kernel)
            .arg("--initrd")
            .arg(initrd)
            .args(["--append", append])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting oxide86");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut typed: String = script.iter().map(|c| format!("{c}\n")).collect();
        typed.push_str("poweroff -f\n");
        stdin.write_all(typed.as_bytes()).expect("typing");
        drop(stdin); // end of input once the script is read
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            output: rx,
            transcript: Vec::new(),
            seen: 0,
            name: name.into(),
        }
    }

    /// Waits until `pattern` appears after what was already consumed;
    /// returns the text before it.
    fn expect(&mut self, pattern: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = String::from_utf8_lossy(&self.transcript[self.seen..]).into_owned();
            if let Some(at) = text.find(pattern) {
                self.seen += text[..at].len() + pattern.len();
                return text[..at].to_string();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.transcript.extend_from_slice(&bytes),
                Err(_) => {
                    let _ = self.child.kill();
                    let tail = String::from_utf8_lossy(
                        &self.transcript[self.transcript.len().saturating_sub(3000)..],
                    )
                    .into_owned();
                    panic!(
                        "{}: no {pattern:?} within {timeout:?}; output ends with:\n{tail}",
                        self.name
                    );
                }
            }
        }
    }

    /// The output of `command`, the next line of the script (without the
    /// echoed line).
    fn run(&mut self, command: &str) -> String {
        let out = self.expect(PROMPT, COMMAND_TIMEOUT);
        let out = out.replace('\r', "");
        // The terminal echoes the command line first.
        match out.find(command) {
            Some(at) => out[at + command.len()..]
                .trim_start_matches('\n')
                .to_string(),
            None => panic!("{}: {command:?} was not echoed:\n{out}", self.name),
        }
    }

    /// Powers off and returns the whole serial output and the exit status.
    fn power_off(mut self) -> (String, std::process::ExitStatus, String) {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{}: still running after poweroff -f", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_secs(5)) {
            self.transcript.extend_from_slice(&bytes);
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (
            String::from_utf8_lossy(&self.transcript).into_owned(),
            status,
            stderr,
        )
    }
}

/// Boots `kernel`, runs the checks, powers off; returns the transcript.
fn session(name: &str, kernel: &Path, initrd: &Path, append: &str) -> String {
    let started = Instant::now();
    let mut s = Session::start(name, kernel, initrd, append, &SCRIPT);
    let boot_log = s.expect("oxide86 initramfs: Linux", BOOT_TIMEOUT);
    for bad in BAD_LOG {
        assert!(
            !boot_log.contains(bad),
            "{name}: boot log has {bad:?}:\n{boot_log}"
        );
    }
    s.expect(PROMPT, COMMAND_TIMEOUT);
    eprintln!(
        "{name}: shell prompt after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    assert_eq!(s.run(SCRIPT[0]).trim(), "42", "{name}: arithmetic");

    let cpuinfo = s.run(SCRIPT[1]);
    assert!(
        cpuinfo.contains("model name\t: oxide86 Virtual CPU"),
        "{name}: cpuinfo:\n{cpuinfo}"
    );
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    for f in ["fpu", "tsc", "cx8", "apic", "cmov", "fxsr"] {
        assert!(
            flags.split_whitespace().any(|w| w == f),
            "{name}: no {f} in {flags}"
        );
    }

    let interrupts = s.run(SCRIPT[2]);
    let timer = interrupts
        .lines()
        .find(|l| l.contains("timer"))
        .unwrap_or_else(|| panic!("{name}: no timer line:\n{interrupts}"));
    assert!(
        timer.contains("IO-APIC"),
        "{name}: timer not through the I/O APIC: {timer}"
    );
    assert!(
        interrupts.lines().any(|l| l.contains("ttyS0")),
        "{name}: no serial interrupt:\n{interrupts}"
    );
    let local_timer = interrupts
        .lines()
        .find(|l| l.trim_start().starts_with("LOC:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        local_timer > 0,
        "{name}: the local APIC timer never fired:\n{interrupts}"
    );

    let problems = s.run(SCRIPT[3]);
    assert_eq!(problems.trim(), "", "{name}: dmesg reports problems");
    let oopses = s.run(SCRIPT[4]);
    assert_eq!(oopses.trim(), "", "{name}: dmesg has a trace");

    let file = s.run(SCRIPT[5]);
    assert_eq!(
        file.trim().lines().collect::<Vec<_>>(),
        vec!["on-tmpfs", "9"],
        "{name}: tmpfs round trip"
    );

    let (transcript, status, stderr) = s.power_off();
    assert_eq!(
        status.code(),
        Some(0),
        "{name}: exit status; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("exit PowerOff"),
        "{name}: not an ACPI power-off:\n{stderr}"
    );
    eprintln!(
        "{name}: powered off after {:.1} s\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    transcript
}

fn guest_and_initrd() -> Option<(linux::DebianGuest, std::path::PathBuf)> {
    if skip() {
        eprintln!("OXIDE86_SKIP_LINUX_BOOT is set: not booting Linux");
        return None;
    }
    let guest = linux::fetch().unwrap_or_else(|e| panic!("{e:#}"));
    let busybox = std::fs::read(&guest.busybox).expect("reading busybox");
    let initrd = linux::cache_dir().join(format!("initramfs-{}.cpio", std::process::id()));
    std::fs::write(&initrd, linux::initramfs(&busybox)).expect("writing the initramfs");
    eprintln!("guest: {}", guest.versions.replace('\n', " "));
    Some((guest, initrd))
}

/// The `686` kernel with the default command line (crypto self-tests
/// included).
#[test]
fn debian_686_kernel_boots_to_a_shell_and_powers_off() {
    let Some((guest, initrd)) = guest_and_initrd() else {
        return;
    };
    session("686", &guest.kernel_686, &initrd, "console=ttyS0");
    let _ = std::fs::remove_file(initrd);
}

/// The `686-pae` kernel (PAE paging, NX), twice at once: both sessions
/// pass and, under the virtual clock, print the same bytes.
#[test]
fn debian_686_pae_kernel_boots_the_same_way_twice() {
    let Some((guest, initrd)) = guest_and_initrd() else {
        return;
    };
    let append = "console=ttyS0 cryptomgr.notests";
    let runs: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["686-pae run 1", "686-pae run 2"]
            .into_iter()
            .map(|name| {
                let (kernel, initrd) = (&guest.kernel_686_pae, &initrd);
                scope.spawn(move || session(name, kernel, initrd, append))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let _ = std::fs::remove_file(initrd);
    if runs[0] != runs[1] {
        let at = runs[0]
            .bytes()
            .zip(runs[1].bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(runs[0].len().min(runs[1].len()));
        let around = |r: &String| {
            let b = r.as_bytes();
            String::from_utf8_lossy(&b[at.saturating_sub(300)..(at + 300).min(b.len())])
                .into_owned()
        };
        panic!(
            "the two runs differ at byte {at}:\n--- run 1\n{}\n--- run 2\n{}",
            around(&runs[0]),
            around(&runs[1])
        );
    }
}
