//! The 440FX PAM registers (82441FX datasheet 290549, 3.2.18) seen from
//! guest code: a firmware ROM that shadows its own F segment the way a BIOS
//! does, and a direct kernel boot that finds what firmware would leave.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, MB_ADDRESSES};

use iced_x86::code_asm::*;
use oxide86_machine::pc::{BootSource, Pc, PcConfig, PcExit};

/// Where the firmware's code sits in its 64 KiB segment (F000:0100).
const CODE: u16 = 0x0100;
/// A ROM byte the firmware checks before and after shadowing.
const MARK: u16 = 0x8000;
const MARK_VALUE: u8 = 0xA5;
/// A ROM byte (0xF4 fill) the firmware overwrites in RAM while write-only.
const SCRATCH: u16 = 0x9000;
/// What a guest writes to the debug-exit port when every check passed.
const PASS: u8 = 0x21;

/// Checks `cond` on flags set just before: on failure, exit with `code`.
fn fail_unless_equal(a: &mut CodeAssembler, code: u8) -> Result<(), IcedError> {
    let mut ok = a.create_label();
    a.je(ok)?;
    a.mov(al, u32::from(code))?;
    a.out(0xF4, al)?;
    a.hlt()?;
    a.set_label(&mut ok)?;
    a.nop()?;
    Ok(())
}

/// A 64 KiB firmware ROM: reset vector `jmp F000:0100`, then the
/// shadowing sequence, each step checked.
fn shadowing_firmware() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    a.cli().unwrap();
    a.mov(ax, 0xF000u32).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    // At reset the F segment is the ROM alias.
    a.cmp(byte_ptr(u32::from(MARK)), u32::from(MARK_VALUE))
        .unwrap();
    fail_unless_equal(&mut a, 1).unwrap();
    // PAM0 = 0x20: reads from the ROM, writes to DRAM (mechanism #1,
    // register 0x59 = byte lane 1 of dword 0x58).
    a.mov(dx, 0xCF8u32).unwrap();
    a.mov(eax, 0x8000_0058u32).unwrap();
    a.out(dx, eax).unwrap();
    a.mov(dx, 0xCFDu32).unwrap();
    a.mov(al, 0x20u32).unwrap();
    a.out(dx, al).unwrap();
    // Copy the segment onto itself: ROM to shadow RAM.
    a.xor(si, si).unwrap();
    a.xor(di, di).unwrap();
    a.mov(cx, 0x8000u32).unwrap();
    a.cld().unwrap();
    a.rep().movsw().unwrap();
    // A write reaches RAM, but reads still show the ROM.
    a.mov(byte_ptr(u32::from(SCRATCH)), 0x77u32).unwrap();
    a.cmp(byte_ptr(u32::from(SCRATCH)), 0xF4u32).unwrap();
    fail_unless_equal(&mut a, 2).unwrap();
    // PAM0 = 0x10: reads from the shadow, writes dropped.
    a.mov(al, 0x10u32).unwrap();
    a.out(dx, al).unwrap();
    a.cmp(byte_ptr(u32::from(SCRATCH)), 0x77u32).unwrap();
    fail_unless_equal(&mut a, 3).unwrap();
    a.cmp(byte_ptr(u32::from(MARK)), u32::from(MARK_VALUE))
        .unwrap();
    fail_unless_equal(&mut a, 4).unwrap();
    a.mov(byte_ptr(u32::from(MARK)), 0u32).unwrap();
    a.cmp(byte_ptr(u32::from(MARK)), u32::from(MARK_VALUE))
        .unwrap();
    fail_unless_equal(&mut a, 5).unwrap();
    // Configuration space agrees.
    a.in_(al, dx).unwrap();
    a.cmp(al, 0x10u32).unwrap();
    fail_unless_equal(&mut a, 6).unwrap();
    a.mov(al, u32::from(PASS)).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(u64::from(CODE)).unwrap();
    let mut rom = vec![0xF4u8; 0x1_0000];
    rom[usize::from(CODE)..usize::from(CODE) + code.len()].copy_from_slice(&code);
    assert!(usize::from(CODE) + code.len() < usize::from(MARK));
    rom[usize::from(MARK)] = MARK_VALUE;
    // Reset vector: jmp far F000:0100, so CS covers the low alias.
    rom[0xFFF0..0xFFF5].copy_from_slice(&[0xEA, CODE as u8, (CODE >> 8) as u8, 0x00, 0xF0]);
    rom
}

fn config() -> PcConfig {
    PcConfig {
        ram_bytes: 4 << 20,
        max_instructions: Some(1_000_000),
        ..PcConfig::default()
    }
}

#[test]
fn firmware_shadows_its_f_segment_through_pam() {
    let mut pc = Pc::new(config(), BootSource::Firmware(shadowing_firmware())).unwrap();
    assert_eq!(pc.run(), PcExit::DebugExit(PASS));
    assert_eq!(pc.board.pci.pam_registers()[0], 0x10);
    let ram = pc.board.memory.ram().as_slice();
    assert_eq!(ram[0xF_0000 + usize::from(MARK)], MARK_VALUE, "the copy");
    assert_eq!(ram[0xF_0000 + usize::from(SCRATCH)], 0x77);
    assert_eq!(ram[0xF_0000 + usize::from(CODE)], 0xFA, "CLI, copied");
}

/// A Multiboot kernel at 1 MiB (flat 32-bit protected mode on entry).
const LOAD_AT: u32 = 0x10_0000;

fn multiboot_checker() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    multiboot_header(&mut a, MB_ADDRESSES, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    // The ACPI RSDP the machine placed at 0xE0000 reads back.
    a.cmp(dword_ptr(0xE_0000), u32::from_le_bytes(*b"RSD "))
        .unwrap();
    fail_unless_equal(&mut a, 1).unwrap();
    a.cmp(dword_ptr(0xE_0004), u32::from_le_bytes(*b"PTR "))
        .unwrap();
    fail_unless_equal(&mut a, 2).unwrap();
    // 0xC0000-0xEFFFF: read/write RAM.
    for at in [0xC_0000u32, 0xD_8000, 0xE_FFFC] {
        a.mov(dword_ptr(at), 0x1234_5678u32).unwrap();
        a.cmp(dword_ptr(at), 0x1234_5678u32).unwrap();
        fail_unless_equal(&mut a, 3).unwrap();
    }
    // The BIOS segment: read-only RAM (zeros here), writes dropped.
    a.mov(byte_ptr(0xF_0000), 0x55u32).unwrap();
    a.cmp(byte_ptr(0xF_0000), 0u32).unwrap();
    fail_unless_equal(&mut a, 4).unwrap();
    // Configuration space says the same: PAM0 0x10, PAM1-PAM6 0x33.
    a.mov(dx, 0xCF8u32).unwrap();
    a.mov(eax, 0x8000_0058u32).unwrap();
    a.out(dx, eax).unwrap();
    a.mov(dx, 0xCFCu32).unwrap();
    a.in_(eax, dx).unwrap();
    a.cmp(eax, 0x3333_1000u32).unwrap();
    fail_unless_equal(&mut a, 5).unwrap();
    a.mov(dx, 0xCF8u32).unwrap();
    a.mov(eax, 0x8000_005Cu32).unwrap();
    a.out(dx, eax).unwrap();
    a.mov(dx, 0xCFCu32).unwrap();
    a.in_(eax, dx).unwrap();
    a.cmp(eax, 0x3333_3333u32).unwrap();
    fail_unless_equal(&mut a, 6).unwrap();
    a.mov(al, u32::from(PASS)).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

#[test]
fn direct_boot_leaves_firmware_pam_and_acpi_tables() {
    let boot = BootSource::Multiboot {
        kernel: multiboot_checker(),
        cmdline: String::new(),
        modules: Vec::new(),
    };
    let mut pc = Pc::new(config(), boot).unwrap();
    assert_eq!(pc.run(), PcExit::DebugExit(PASS));
}
