//! Pieces the machine's test guests share.

use iced_x86::code_asm::CodeAssembler;

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
