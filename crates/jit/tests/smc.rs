//! Self-modifying code under the JIT: every case must leave the
//! interpreter's state and memory.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

/// A loop that patches the immediate of the instruction right after the
/// store (in the same block), then accumulates it.
#[test]
fn patching_the_next_instruction() {
    // mov ecx, 50 ; top: mov byte [imm], cl ; mov al, 0 (imm at +1) ; add ebx, eax ; dec ecx ; jnz top ; hlt
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    a.mov(ecx, 50u32).unwrap();
    a.xor(eax, eax).unwrap();
    a.set_label(&mut top).unwrap();
    // The MOV AL below is at a fixed offset: compute from a first assembly.
    a.mov(byte_ptr(0u64), cl).unwrap(); // placeholder address, fixed below
    a.mov(al, 0u32).unwrap();
    a.add(ebx, eax).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(top).unwrap();
    a.hlt().unwrap();
    let mut code = a.assemble(u64::from(CODE)).unwrap();
    // Find `B0 00` (mov al, 0) and point the store at its immediate.
    let pos = code.windows(2).position(|w| w == [0xB0, 0x00]).unwrap();
    let imm = CODE + pos as u32 + 1;
    // The store is `88 0D disp32` (mov [disp32], cl) just before it.
    assert_eq!(&code[pos - 6..pos - 4], &[0x88, 0x0D]);
    code[pos - 4..pos].copy_from_slice(&imm.to_le_bytes());
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(
            e.stats.invalidations > 0 || kind == EngineKind::Tiered,
            "{:?}",
            e.stats
        );
    }
    let (s, _, _) = run(EngineKind::Jit, &code, 100_000, 1000, |_, _| {});
    assert_eq!(s.gpr[3], (1..=50).sum::<u32>());
}

/// A hot routine in another block whose immediate the caller rewrites
/// on every iteration (through the RAM fast path's page, first written as data).
#[test]
fn patching_a_later_block() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        // The routine at 0x3000: mov eax, imm32 ; ret
        a.mov(byte_ptr(0x3000u64), 0xB8u32)?;
        a.mov(dword_ptr(0x3001u64), 0u32)?;
        a.mov(byte_ptr(0x3005u64), 0xC3u32)?;
        a.mov(ecx, 200u32)?;
        a.set_label(&mut top)?;
        a.mov(dword_ptr(0x3001u64), ecx)?;
        a.call(0x3000u64)?;
        a.add(ebx, eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        same_as_interp(kind, &code, 100_000, |_, _| {});
    }
    let (s, _, e) = run(EngineKind::Jit, &code, 100_000, 1000, |_, _| {});
    assert_eq!(s.gpr[3], (1..=200).sum::<u32>());
    assert!(e.stats.invalidations >= 100, "{:?}", e.stats);
}

/// Data written on the page that holds the running loop: correct, and
/// the loop's own block keeps working.
#[test]
fn code_on_a_page_shared_with_data() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 300u32)?;
        a.set_label(&mut top)?;
        a.add(dword_ptr(u64::from(CODE) + 0x800), ecx)?;
        a.mov(eax, dword_ptr(u64::from(CODE) + 0x800))?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        same_as_interp(kind, &code, 100_000, |_, _| {});
    }
    let (s, _, _) = run(EngineKind::Jit, &code, 100_000, 1000, |_, _| {});
    assert_eq!(s.gpr[0], (1..=300).sum::<u32>());
}

/// `mov eax, 1 ; hlt` at CODE, run from its start each time, whose
/// immediate a "device" rewrites behind the CPU's back.
struct MovEaxGuest {
    cpu: oxide86_cpu::Cpu,
    ram: oxide86_cpu::FlatRam,
}

impl MovEaxGuest {
    fn new() -> Self {
        let code = assemble(|a| {
            a.mov(eax, 1u32)?;
            a.hlt()
        });
        let mut ram = oxide86_cpu::FlatRam::new(RAM);
        ram.load(CODE, &code);
        Self { cpu: flat32(), ram }
    }

    /// Runs the program once from CODE; returns EAX.
    fn run(&mut self, engine: &mut oxide86_jit::Engine) -> u32 {
        self.cpu.state.eip = CODE;
        self.cpu.state.halted = false;
        let _ = engine.run(&mut self.cpu, &mut self.ram, 10, |_, _| false);
        self.cpu.state.gpr[0]
    }

    /// Writes the immediate as DMA would and tells the decode cache.
    fn dma_write_imm(&mut self, imm: u8) {
        self.ram.bytes[CODE as usize + 1] = imm;
        self.cpu.icache.invalidate(CODE + 1, 1);
    }
}

/// A write from outside the CPU (as a device's DMA would) through
/// `DecodeCache::invalidate` drops the translation.
#[test]
fn a_dma_style_write_invalidates_translations() {
    let mut g = MovEaxGuest::new();
    let mut engine = oxide86_jit::Engine::new(EngineKind::Jit);
    assert_eq!(g.run(&mut engine), 1);
    assert_eq!(engine.stats.blocks_translated, 1);
    g.dma_write_imm(2);
    assert_eq!(g.run(&mut engine), 2);
    assert_eq!(engine.stats.invalidations, 1);
}

/// Under tiered, a block that was hot when a write dropped it is
/// translated again at its next execution, not after another threshold
/// of interpreted runs.
#[test]
fn a_hot_block_dropped_by_a_write_is_translated_again_at_once() {
    let mut g = MovEaxGuest::new();
    let mut engine = oxide86_jit::Engine::new(EngineKind::Tiered);
    engine.threshold = 3;
    for _ in 0..3 {
        g.run(&mut engine);
    }
    assert_eq!(engine.stats.blocks_translated, 1);
    g.dma_write_imm(2);
    assert_eq!(g.run(&mut engine), 2);
    assert_eq!(engine.stats.invalidations, 1);
    assert_eq!(engine.stats.blocks_translated, 2, "{:?}", engine.stats);
}
