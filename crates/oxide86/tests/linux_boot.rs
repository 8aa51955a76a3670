//! Debian's i386 Linux kernels, unmodified, booted with `--kernel --initrd
//! --append` to a busybox shell on the serial console; commands typed on
//! stdin are checked, and `poweroff -f` must end the emulator with status
//! 0. Under `--clock virtual` the same session under the interpreter, the
//! JIT and the tiered engine prints byte-identical output and retires the
//! same number of instructions.
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
    fn start(name: &str, engine: &str, boot: &Boot, script: &[&str]) -> Session {
        let Boot {
            kernel,
            initrd,
            append,
        } = boot;
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxide86"))
            .args(["run", "--clock", "virtual", "--serial", "stdio", "--stats"])
            .args(["--engine", engine])
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

/// What to boot.
struct Boot<'a> {
    kernel: &'a Path,
    initrd: &'a Path,
    append: &'a str,
}

/// What a session printed: the serial transcript and the instructions
/// retired (from `--stats`).
struct Transcript {
    serial: String,
    instructions: u64,
}

/// Boots under `engine`, runs the checks, powers off.
fn session(name: &str, engine: &str, boot: &Boot) -> Transcript {
    let started = Instant::now();
    let mut s = Session::start(name, engine, boot, &SCRIPT);
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
    let instructions = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("instructions retired"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name}: no instruction count in:\n{stderr}"));
    Transcript {
        serial: transcript,
        instructions,
    }
}

fn guest_and_initrd(test: &str) -> Option<(linux::DebianGuest, std::path::PathBuf)> {
    if skip() {
        eprintln!("OXIDE86_SKIP_LINUX_BOOT is set: not booting Linux");
        return None;
    }
    let guest = linux::fetch().unwrap_or_else(|e| panic!("{e:#}"));
    let busybox = std::fs::read(&guest.busybox).expect("reading busybox");
    let initrd = linux::cache_dir().join(format!("initramfs-{test}-{}.cpio", std::process::id()));
    std::fs::write(&initrd, linux::initramfs(&busybox)).expect("writing the initramfs");
    eprintln!("guest: {}", guest.versions.replace('\n', " "));
    Some((guest, initrd))
}

/// The `686` kernel with the default command line (crypto self-tests
/// included), under the tiered engine (the default).
#[test]
fn debian_686_kernel_boots_to_a_shell_and_powers_off() {
    let Some((guest, initrd)) = guest_and_initrd("686") else {
        return;
    };
    let boot = Boot {
        kernel: &guest.kernel_686,
        initrd: &initrd,
        append: "console=ttyS0",
    };
    session("686 tiered", "tiered", &boot);
    let _ = std::fs::remove_file(initrd);
}

/// The `686-pae` kernel (PAE paging, NX) under each engine at once: every
/// session passes and, under the virtual clock, prints the same bytes and
/// retires the same instructions as the interpreter's.
#[test]
fn debian_686_pae_kernel_boots_the_same_under_every_engine() {
    let Some((guest, initrd)) = guest_and_initrd("686-pae") else {
        return;
    };
    let boot = Boot {
        kernel: &guest.kernel_686_pae,
        initrd: &initrd,
        append: "console=ttyS0 cryptomgr.notests",
    };
    let engines = ["interp", "jit", "tiered"];
    let runs: Vec<Transcript> = std::thread::scope(|scope| {
        let handles: Vec<_> = engines
            .into_iter()
            .map(|engine| {
                let boot = &boot;
                scope.spawn(move || session(&format!("686-pae {engine}"), engine, boot))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let _ = std::fs::remove_file(initrd);
    let reference = &runs[0];
    for (engine, run) in engines.iter().zip(&runs).skip(1) {
        assert_same(reference, run, engine);
    }
}

/// Panics with the first differing bytes if `run` differs from the
/// interpreter's `reference`.
fn assert_same(reference: &Transcript, run: &Transcript, engine: &str) {
    let (a, b) = (&reference.serial, &run.serial);
    if a != b {
        let at = a
            .bytes()
            .zip(b.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        let around = |r: &String| {
            let b = r.as_bytes();
            String::from_utf8_lossy(&b[at.saturating_sub(300)..(at + 300).min(b.len())])
                .into_owned()
        };
        panic!(
            "{engine} differs from interp at byte {at}:\n--- interp\n{}\n--- {engine}\n{}",
            around(a),
            around(b)
        );
    }
    assert_eq!(
        reference.instructions, run.instructions,
        "instructions retired under interp and {engine}"
    );
}
