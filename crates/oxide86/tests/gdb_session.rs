//! GDB drives `oxide86 run --gdb --paused` in batch mode: it breaks at a
//! known address of a small Multiboot test program, steps, reads and
//! changes registers and memory, hits a watchpoint and continues to the
//! program's exit, and each answer is checked.
//!
//! Needs Debian's `gdb`. Without it the test is skipped, except in CI
//! (`CI=true`), where a missing gdb fails it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iced_x86::code_asm::*;

/// Where the program is loaded, and its entry point.
const LOAD_AT: u32 = 0x0010_0000;
const ENTRY: u32 = LOAD_AT + 0x40;
/// The counter the loop stores (watched) and the exit value it reads.
const COUNTER: u32 = LOAD_AT + 0x1000;
const EXIT_VALUE: u32 = COUNTER + 4;

/// The program: EAX=1; ECX counts up by EAX, stored at COUNTER each time,
/// until it reaches 5; then the byte at EXIT_VALUE goes to the debug-exit
/// port. Returns the image and the loop's address.
fn program() -> (Vec<u8>, u32) {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    let flags: u32 = (1 << 16) | (1 << 1);
    let magic: u32 = 0x1BAD_B002;
    a.dd(&[
        magic,
        flags,
        0u32.wrapping_sub(magic.wrapping_add(flags)),
        LOAD_AT,
        LOAD_AT,
        0,
        0,
        ENTRY,
    ])
    .unwrap();
    a.db(&[0; 0x20]).unwrap();
    a.mov(eax, 1).unwrap(); // ENTRY: 5 bytes
    a.mov(ebx, 2).unwrap();
    a.xor(ecx, ecx).unwrap();
    a.set_label(&mut top).unwrap();
    a.add(ecx, eax).unwrap();
    a.mov(dword_ptr(COUNTER), ecx).unwrap();
    a.cmp(ecx, 5).unwrap();
    a.jb(top).unwrap();
    a.mov(eax, dword_ptr(EXIT_VALUE)).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let r = a
        .assemble_options(
            u64::from(LOAD_AT),
            iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
        )
        .unwrap();
    let top_at = r.label_ip(&top).unwrap() as u32;
    let mut image = r.inner.code_buffer;
    image.resize(0x1000 + 16, 0);
    (image, top_at)
}

fn gdb_available() -> bool {
    let found = Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "gdb is not installed, and CI=true: the gdb session test must run in CI"
        );
        eprintln!("gdb not found: skipping the gdb session test");
    }
    found
}

/// A free loopback port (bound and released; the emulator binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn gdb_breaks_steps_edits_watches_and_continues_to_exit() {
    if !gdb_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("oxide86-gdb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (image, top) = program();
    let kernel = dir.join("kernel.bin");
    std::fs::write(&kernel, &image).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut emu = Command::new(env!("CARGO_BIN_EXE_oxide86"))
        .args([
            "run", "--serial", "none", "--memory", "16", "--paused", "--gdb", &addr,
        ])
        .arg("--kernel")
        .arg(&kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oxide86 starts");
    // Wait until the stub listens (it says so on stderr).
    let mut stderr = std::io::BufReader::new(emu.stderr.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("waiting for gdb") {
        use std::io::BufRead;
        banner.clear();
        let n = stderr.read_line(&mut banner).unwrap();
        assert!(n > 0, "the emulator ended before listening");
    }
    let script = format!(
        "set pagination off
set confirm off
set architecture i386
target remote {addr}
printf \"A eip=%#x\\n\", $eip
stepi
printf \"B eip=%#x eax=%d\\n\", $eip, $eax
break *{top:#x}
continue
printf \"C eip=%#x ecx=%d\\n\", $eip, $ecx
set $ecx = 3
printf \"D ecx=%d\\n\", $ecx
printf \"E mem=%#x\\n\", *(unsigned int *){EXIT_VALUE:#x}
set *(unsigned int *){EXIT_VALUE:#x} = 0x21
printf \"F mem=%#x\\n\", *(unsigned int *){EXIT_VALUE:#x}
delete
watch *(unsigned int *){COUNTER:#x}
continue
printf \"G ecx=%d counter=%d\\n\", $ecx, *(unsigned int *){COUNTER:#x}
delete
monitor info registers
continue
"
    );
    let script_path = dir.join("session.gdb");
    std::fs::File::create(&script_path)
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let gdb = Command::new("gdb")
        .args(["-batch", "-nx", "-x"])
        .arg(&script_path)
        .stdin(Stdio::null())
        .output()
        .expect("gdb runs");
    let out = String::from_utf8_lossy(&gdb.stdout).into_owned();
    let err = String::from_utf8_lossy(&gdb.stderr).into_owned();
    let emu_out = wait_with_timeout(&mut emu, stderr, Duration::from_secs(30));
    let context = format!("gdb stdout:\n{out}\ngdb stderr:\n{err}\nemulator: {emu_out}");
    let expect = |needle: &str| assert!(out.contains(needle), "missing '{needle}'\n{context}");
    expect(&format!("A eip={ENTRY:#x}"));
    expect(&format!("B eip={:#x} eax=1", ENTRY + 5));
    expect(&format!("C eip={top:#x} ecx=0"));
    expect("D ecx=3");
    expect("E mem=0\n");
    expect("F mem=0x21");
    expect("Old value = 0");
    expect("New value = 4");
    expect("G ecx=4 counter=4");
    // Monitor output reaches gdb's stderr.
    assert!(err.contains("CR0=60000011"), "monitor output\n{context}");
    // The guest exits through port 0xF4 with 0x21: status (0x21 << 1) | 1.
    expect("exited with code 0103");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for the emulator; kills it after `limit`. Returns its status and stderr.
fn wait_with_timeout(
    child: &mut std::process::Child,
    mut stderr: impl std::io::Read,
    limit: Duration,
) -> String {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            return format!("{status}; stderr:\n{err}");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return "killed after the time limit".into();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
