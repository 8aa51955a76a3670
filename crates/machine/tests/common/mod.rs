//! Pieces the machine's test guests share.

use iced_x86::code_asm::*;

/// Multiboot v1 header flag: the address fields are valid (an a.out
/// kludge image, loaded where the header says).
pub const MB_ADDRESSES: u32 = 1 << 16;
/// Multiboot v1 header flag: the loader passes memory information.
pub const MB_MEMORY: u32 = 1 << 1;

/// Emits a Multiboot v1 header (32 bytes) for an image loaded at
/// `load_at` (the header is its first bytes) that starts at `entry`.
pub fn multiboot_header(a: &mut CodeAssembler, flags: u32, load_at: u32, entry: u32) {
    let magic: u32 = 0x1BAD_B002;
    let header = [
        magic,
        flags,
        0u32.wrapping_sub(magic.wrapping_add(flags)),
        load_at,
        load_at,
        0,
        0,
        entry,
    ];
    a.dd(&header).unwrap();
}

/// Boots the Multiboot `kernel` under the virtual clock and `engine` and
/// runs it until it writes 0 to the debug-exit port (asserted).
pub fn run_to_debug_exit(
    kernel: Vec<u8>,
    engine: oxide86_machine::pc::EngineKind,
    max_instructions: u64,
) -> oxide86_machine::pc::Pc {
    use oxide86_machine::pc::{BootSource, Pc, PcConfig, PcExit};
    let config = PcConfig {
        clock: oxide86_machine::clock::ClockMode::Virtual,
        max_instructions: Some(max_instructions),
        engine,
        ..PcConfig::default()
    };
    let boot = BootSource::Multiboot {
        kernel,
        cmdline: String::new(),
        modules: Vec::new(),
    };
    let mut pc = Pc::new(config, boot).unwrap();
    assert_eq!(pc.run(), PcExit::DebugExit(0));
    pc
}

/// Emits code that builds an IDT at `idt` whose vector 0x20 is a 32-bit
/// interrupt gate to `handler` (all other entries empty), loads it, and
/// programs the 8259A pair as Linux does (vectors 0x20/0x28) with only
/// IRQ0 unmasked. Uses EAX, EDI and the dword at 0x10000.
pub fn irq0_only_to(a: &mut CodeAssembler, idt: u32, handler: u32) {
    a.mov(edi, idt + 0x20 * 8).unwrap();
    a.mov(eax, handler).unwrap();
    a.mov(word_ptr(edi), ax).unwrap();
    a.mov(word_ptr(edi + 2), 0x08).unwrap();
    a.mov(word_ptr(edi + 4), 0x8E00).unwrap();
    a.shr(eax, 16).unwrap();
    a.mov(word_ptr(edi + 6), ax).unwrap();
    a.mov(dword_ptr(0x1_0000), 0x0000_07FF | ((idt & 0xFFFF) << 16))
        .unwrap();
    a.mov(word_ptr(0x1_0004), idt >> 16).unwrap();
    a.lidt(ptr(0x1_0000u32)).unwrap();
    for (port, v) in [
        (0x20u32, 0x11u32),
        (0xA0, 0x11),
        (0x21, 0x20),
        (0xA1, 0x28),
        (0x21, 4),
        (0xA1, 2),
        (0x21, 1),
        (0xA1, 1),
        (0x21, 0xFE),
        (0xA1, 0xFF),
    ] {
        a.mov(al, v).unwrap();
        a.out(port, al).unwrap();
    }
}
