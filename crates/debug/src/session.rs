//! Runs a machine with a GDB stub and/or a monitor console attached: the
//! loop behind `oxide86 run --gdb ... --paused --monitor ...`.
//!
//! Listener threads only accept connections and read monitor lines; they
//! raise the machine's interrupt flag (`Pc::debug`), and the machine's own
//! thread serves them between two instructions, so the guest is never
//! touched from two threads.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use oxide86_machine::pc::{Pc, PcExit};
use oxide86_machine::stop::Stop;

use crate::gdb::{serve, GdbTarget, SessionEnd};
use crate::monitor::{self, Action};

/// Where the monitor console is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorSpec {
    /// Lines from stdin, answers on stdout.
    Stdio,
    /// A TCP listener; each connection is a console.
    Tcp(SocketAddr),
}

impl std::str::FromStr for MonitorSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "stdio" {
            return Ok(Self::Stdio);
        }
        s.strip_prefix("tcp:")
            .and_then(|a| a.parse().ok())
            .map(Self::Tcp)
            .ok_or_else(|| format!("invalid monitor '{s}': expected stdio or tcp:HOST:PORT"))
    }
}

/// What to attach.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Listen for GDB here.
    pub gdb: Option<SocketAddr>,
    /// Wait for GDB before the first instruction.
    pub paused: bool,
    /// The monitor console.
    pub monitor: Option<MonitorSpec>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A monitor line and where its answer goes.
struct Request {
    line: String,
    reply: Sender<String>,
}

fn spawn_monitor_stdio(tx: Sender<Request>, flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { return };
            let (rtx, rrx) = channel();
            if tx.send(Request { line, reply: rtx }).is_err() {
                return;
            }
            flag.store(true, Ordering::Relaxed);
            if let Ok(answer) = rrx.recv() {
                let mut out = std::io::stdout();
                let _ = out.write_all(answer.as_bytes());
                let _ = out.write_all(b"(oxide86) ");
                let _ = out.flush();
            }
        }
    });
}

fn serve_monitor_client(stream: TcpStream, tx: Sender<Request>, flag: Arc<AtomicBool>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let _ = writer.write_all(b"oxide86 monitor (help for commands)\n(oxide86) ");
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let (rtx, rrx) = channel();
        if tx.send(Request { line, reply: rtx }).is_err() {
            return;
        }
        flag.store(true, Ordering::Relaxed);
        match rrx.recv() {
            Ok(answer) => {
                if writer.write_all(answer.as_bytes()).is_err()
                    || writer.write_all(b"(oxide86) ").is_err()
                {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn spawn_monitor_tcp(listener: TcpListener, tx: Sender<Request>, flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tx, flag) = (tx.clone(), flag.clone());
            std::thread::spawn(move || serve_monitor_client(stream, tx, flag));
        }
    });
}

fn spawn_gdb_acceptor(listener: TcpListener, tx: Sender<TcpStream>, flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if tx.send(stream).is_err() {
                return;
            }
            flag.store(true, Ordering::Relaxed);
        }
    });
}

fn listen(addr: SocketAddr) -> Result<TcpListener, SessionError> {
    TcpListener::bind(addr).map_err(|source| SessionError::Listen { addr, source })
}

/// Runs `pc` with the debugger front ends `opts` asks for until the run
/// ends; returns the machine and how it ended.
pub fn run(pc: Pc, opts: &SessionOptions) -> Result<(Pc, PcExit), SessionError> {
    let mut target = GdbTarget::new(pc);
    let flag = target.pc.debug.interrupt_handle();
    let (mon_tx, mon_rx) = channel::<Request>();
    match &opts.monitor {
        Some(MonitorSpec::Stdio) => spawn_monitor_stdio(mon_tx, flag.clone()),
        Some(MonitorSpec::Tcp(addr)) => {
            let l = listen(*addr)?;
            eprintln!("oxide86: monitor on {}", l.local_addr().unwrap_or(*addr));
            spawn_monitor_tcp(l, mon_tx, flag.clone());
        }
        None => drop(mon_tx),
    }
    let (gdb_tx, gdb_rx) = channel::<TcpStream>();
    if let Some(addr) = opts.gdb {
        let l = listen(addr)?;
        let shown = l.local_addr().unwrap_or(addr);
        if opts.paused {
            eprintln!("oxide86: paused; waiting for gdb on {shown} (target remote {shown})");
            // Until a debugger has let the guest run, a dropped
            // connection (a port probe, a crashed gdb) keeps it paused.
            let at_start = target.pc.total_instructions();
            while let Ok((stream, _)) = l.accept() {
                match gdb_session(&mut target, stream) {
                    Some(exit) => return Ok((target.pc, exit)),
                    None if target.pc.total_instructions() == at_start => {}
                    None => break,
                }
            }
        } else {
            eprintln!("oxide86: gdb can connect on {shown}");
        }
        spawn_gdb_acceptor(l, gdb_tx, flag.clone());
    } else {
        drop(gdb_tx);
    }
    loop {
        match target.pc.resume() {
            Stop::Exit(exit) => return Ok((target.pc, exit)),
            Stop::Interrupted => {}
            _ => continue, // a break-on stop with no debugger attached: run on
        }
        while let Ok(req) = mon_rx.try_recv() {
            let mut out = String::new();
            let action = monitor::execute(&mut target.pc, &req.line, &mut out);
            let _ = req.reply.send(out);
            if action == Action::Quit {
                return Ok((target.pc, PcExit::Quit));
            }
        }
        if let Ok(stream) = gdb_rx.try_recv() {
            if let Some(exit) = gdb_session(&mut target, stream) {
                return Ok((target.pc, exit));
            }
        }
    }
}

/// One GDB connection; `Some` when the emulator must end.
fn gdb_session(target: &mut GdbTarget, stream: TcpStream) -> Option<PcExit> {
    let _ = stream.set_nodelay(true);
    match serve(target, stream) {
        SessionEnd::Detached => None,
        SessionEnd::Killed => Some(PcExit::Quit),
        SessionEnd::Exited(e) => Some(e),
        SessionEnd::ConnectionLost(why) => {
            eprintln!("oxide86: gdb connection lost ({why}); the guest runs on");
            None
        }
    }
}
