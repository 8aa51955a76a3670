//! Under the virtual clock an IN or OUT on the ISA bus takes `ISA_IO_NS`
//! of machine time, as a bus cycle does on hardware: a kernel delaying
//! with port 0x80 or polling port 0x61 for the PIT waits in a thousandth
//! of the instructions. Ports above the ISA range cost nothing more; a
//! timer due while the CPU computes after such waits interrupts on time;
//! every engine ends on the same instruction.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{irq0_only_to, multiboot_header, run_to_debug_exit, MB_ADDRESSES, MB_MEMORY};

use iced_x86::code_asm::*;
use oxide86_machine::pc::EngineKind;
use oxide86_machine::pc_board::ISA_IO_NS;

const LOAD_AT: u32 = 0x10_0000;
const IDT: u32 = 0x20_0000;
const RESULT: u32 = 0x20_1000;
const OUTS: u32 = 100;
const POLL_NS: u32 = 1_000_000;

fn start(a: &mut CodeAssembler) {
    multiboot_header(a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    a.mov(esp, 0x9_0000).unwrap();
}

fn finish(mut a: CodeAssembler) -> Vec<u8> {
    a.mov(al, 0).unwrap();
    a.out(0xF4, al).unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

/// TSC ticks of `OUTS` writes to `port` (a three-instruction loop).
fn time_outs(a: &mut CodeAssembler, port: u16, result: u32) {
    let mut again = a.create_label();
    a.rdtsc().unwrap();
    a.mov(ebx, eax).unwrap();
    a.mov(ecx, OUTS).unwrap();
    a.mov(dx, port as u32).unwrap();
    a.set_label(&mut again).unwrap();
    a.out(dx, al).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(again).unwrap();
    a.rdtsc().unwrap();
    a.sub(eax, ebx).unwrap();
    a.mov(dword_ptr(result), eax).unwrap();
}

/// Times 100 OUTs to port 0x80 and to an unclaimed port above the ISA
/// range, then counts the rounds of a loop that reads port 0x61 until
/// `POLL_NS` have passed.
fn delays_guest() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut poll = a.create_label();
    start(&mut a);
    time_outs(&mut a, 0x80, RESULT);
    time_outs(&mut a, 0x4F0, RESULT + 4);
    a.xor(esi, esi).unwrap();
    a.rdtsc().unwrap();
    a.mov(ebx, eax).unwrap();
    a.set_label(&mut poll).unwrap();
    a.inc(esi).unwrap();
    a.in_(al, 0x61).unwrap();
    a.rdtsc().unwrap();
    a.sub(eax, ebx).unwrap();
    a.cmp(eax, POLL_NS).unwrap();
    a.jb(poll).unwrap();
    a.mov(dword_ptr(RESULT + 8), esi).unwrap();
    finish(a)
}

/// Both OUT timings, the poll rounds and the instructions retired.
fn run_delays(engine: EngineKind) -> ([u32; 3], u64) {
    let pc = run_to_debug_exit(delays_guest(), engine, 50_000_000);
    let m = &pc.board.memory;
    let r = [
        m.read_u32(RESULT),
        m.read_u32(RESULT + 4),
        m.read_u32(RESULT + 8),
    ];
    (r, pc.cpu.state.icount)
}

#[test]
fn isa_port_accesses_take_bus_time_and_others_do_not() {
    let ([isa, pci, rounds], icount) = run_delays(EngineKind::Interp);
    let bus = OUTS * ISA_IO_NS as u32;
    assert!(
        (bus..bus + 1_000).contains(&isa),
        "{isa} ns for {OUTS} OUTs to port 0x80"
    );
    assert!(pci < 1_000, "{pci} ns for {OUTS} OUTs above the ISA range");
    let per_round = ISA_IO_NS as u32 + 6;
    assert!(
        (POLL_NS / per_round..POLL_NS / per_round + 10).contains(&rounds),
        "{rounds} rounds"
    );
    assert!(icount < 20_000, "{icount} instructions");
    for engine in [EngineKind::Jit, EngineKind::Tiered] {
        assert_eq!(
            run_delays(engine),
            ([isa, pci, rounds], icount),
            "{engine:?}"
        );
    }
}

/// PIT channel 0 counts for its one-shot (mode 0) interrupt: 200 µs.
const ONE_SHOT_COUNTS: u32 = 239;
const ONE_SHOT_NS: u32 = 200_307; // 239 / 1.193182 MHz
/// Port 0x80 writes before the compute loop (150 µs: the PIT is due
/// 50 µs into the loop).
const DELAYS: u32 = 150;

/// Arms a 200 µs one-shot timer, waits 150 µs with port 0x80 writes, then
/// computes (interrupts on) for about 400 µs; the IRQ0 handler stores the
/// TSC it runs at, and the guest the TSC it armed the timer at.
fn one_shot_guest() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut delay = a.create_label();
    let mut compute = a.create_label();
    let mut handler = a.create_label();
    start(&mut a);
    irq0_only_to(&mut a, IDT, LOAD_AT + 0x200);
    a.mov(al, 0x30).unwrap(); // channel 0, lobyte/hibyte, mode 0
    a.out(0x43, al).unwrap();
    a.mov(al, ONE_SHOT_COUNTS & 0xFF).unwrap();
    a.out(0x40, al).unwrap();
    a.mov(al, ONE_SHOT_COUNTS >> 8).unwrap();
    a.out(0x40, al).unwrap();
    a.rdtsc().unwrap();
    a.mov(dword_ptr(RESULT), eax).unwrap();
    a.mov(ecx, DELAYS).unwrap();
    a.set_label(&mut delay).unwrap();
    a.out(0x80, al).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(delay).unwrap();
    a.sti().unwrap();
    a.mov(ecx, 200_000).unwrap();
    a.set_label(&mut compute).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(compute).unwrap();
    a.cli().unwrap();
    let mut code = finish(a);
    assert!(code.len() <= 0x200);
    code.resize(0x200, 0);
    let mut h = CodeAssembler::new(32).unwrap();
    h.set_label(&mut handler).unwrap();
    h.push(eax).unwrap();
    h.push(edx).unwrap();
    h.rdtsc().unwrap();
    h.mov(dword_ptr(RESULT + 4), eax).unwrap();
    h.mov(al, 0x20).unwrap();
    h.out(0x20, al).unwrap();
    h.pop(edx).unwrap();
    h.pop(eax).unwrap();
    h.iretd().unwrap();
    code.extend(h.assemble(u64::from(LOAD_AT + 0x200)).unwrap());
    code
}

/// The interrupt's delay after the timer expired, and the instructions retired.
fn run_one_shot(engine: EngineKind) -> (i64, u64) {
    let pc = run_to_debug_exit(one_shot_guest(), engine, 50_000_000);
    let m = &pc.board.memory;
    let armed = m.read_u32(RESULT);
    let taken = m.read_u32(RESULT + 4);
    assert_ne!(taken, 0, "no interrupt");
    let late = i64::from(taken.wrapping_sub(armed)) - i64::from(ONE_SHOT_NS);
    (late, pc.cpu.state.icount)
}

#[test]
fn a_timer_due_after_isa_waits_interrupts_on_time() {
    let (late, icount) = run_one_shot(EngineKind::Interp);
    // Within a PIT tick (838 ns) plus a few instructions of the handler.
    assert!((-1_000..2_000).contains(&late), "interrupt {late} ns late");
    for engine in [EngineKind::Jit, EngineKind::Tiered] {
        assert_eq!(run_one_shot(engine), (late, icount), "{engine:?}");
    }
}
