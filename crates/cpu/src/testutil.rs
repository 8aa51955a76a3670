//! Test helpers: assemble guest code with iced-x86's `code_asm`, run it to
//! its final HLT on a flat RAM, and hand back the state.

use crate::flags::Flags;
use crate::state::{cr0, CpuState, SegReg, SegmentCache};
use crate::{Cpu, CpuModel, FlatRam, StepOutcome};
use iced_x86::code_asm::CodeAssembler;

/// Where test code is loaded.
pub const CODE: u32 = 0x1000;

/// A CPU in flat 32-bit protected mode (segments cover 4 GiB), for testing
/// instruction semantics before descriptor loads exist.
pub fn flat32_cpu() -> Cpu {
    let mut cpu = Cpu::new(CpuModel::P6);
    let s = &mut cpu.state;
    s.cr0 |= cr0::PE;
    s.seg = [SegmentCache::flat(0x10, false, 0); 6];
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(0x08, true, 0);
    s.gpr[4] = 0x8000;
    s.eip = CODE;
    cpu
}

/// Assembles `build` (plus a HLT) at [`CODE`] for `bitness`.
pub fn assemble(
    bitness: u32,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bitness).unwrap();
    build(&mut a).unwrap();
    a.hlt().unwrap();
    a.assemble(u64::from(CODE)).unwrap()
}

/// Runs 32-bit code to its HLT and returns the state with flags committed.
pub fn run32(
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    setup: impl FnOnce(&mut CpuState),
) -> CpuState {
    let mut cpu = flat32_cpu();
    let mut ram = FlatRam::new(1 << 20);
    ram.load(CODE, &assemble(32, build));
    setup(&mut cpu.state);
    run_to_halt(&mut cpu, &mut ram);
    cpu.state
}

/// Runs 16-bit real-mode code (CS = 0) to its HLT.
pub fn run16(
    model: CpuModel,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    setup: impl FnOnce(&mut CpuState, &mut FlatRam),
) -> (CpuState, FlatRam) {
    let mut cpu = Cpu::new(model);
    let mut ram = FlatRam::new(1 << 20);
    for s in SegReg::ALL {
        cpu.state.set_real_mode_segment(s, 0);
    }
    cpu.state.gpr[4] = 0x8000;
    cpu.state.eip = CODE;
    ram.load(CODE, &assemble(16, build));
    setup(&mut cpu.state, &mut ram);
    run_to_halt(&mut cpu, &mut ram);
    (cpu.state, ram)
}

fn run_to_halt(cpu: &mut Cpu, ram: &mut FlatRam) {
    let outcome = cpu.run(ram, 1_000_000);
    assert_eq!(
        outcome,
        StepOutcome::Halted,
        "guest did not halt: {:?}",
        cpu.shutdown_reason
    );
    cpu.state.commit_flags();
}
