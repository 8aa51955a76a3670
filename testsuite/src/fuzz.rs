//! Robustness fuzzing: no byte sequence, in any mode, may panic the
//! interpreter (DESIGN.md: "a panic on guest input is a bug").
//!
//! [`run_one`] turns arbitrary bytes into a processor mode, register and
//! flag values and guest code, then runs up to [`MAX_STEPS`] instructions.
//! The cargo-fuzz target `fuzz/fuzz_targets/interp.rs` calls it with
//! libFuzzer's inputs; [`tests`] feeds it a fixed pseudo-random stream so
//! CI runs the same harness without a fuzzer.
//!
//! Input layout (missing bytes read as zero):
//!
//! | bytes  | meaning                                                   |
//! |--------|-----------------------------------------------------------|
//! | 0      | mode: 8086, 286 or family-6 real mode, flat 32-bit, V86   |
//! | 1-32   | EAX..EDI (ESP kept inside RAM, counts kept small)         |
//! | 33-36  | EFLAGS (TF, IF, DF, IOPL, AC ... as given)                |
//! | 37-48  | ES CS SS DS FS GS selectors (real mode and V86)           |
//! | 49-50  | EIP                                                       |
//! | 51     | CR0 MP/EM/TS/NE/AM bits; bit 7 turns paging on (PE modes)|
//! | 52     | CR4 VME/PVI/TSD/DE/PSE bits                               |
//! | 53-56  | DR7 (breakpoint enables and kinds)                        |
//! | 57-72  | DR0-DR3 (kept below 128 KiB, near the code and data)      |
//! | 73     | CR3 page-directory frame (in the first MiB of RAM)        |
//! | 74..   | guest code, loaded at CS:EIP                              |
//!
//! With paging on, the page tables are whatever the RAM pattern and the
//! guest's own stores make of them.

use oxide86_cpu::paging::cr4;
use oxide86_cpu::state::{cr0, eflags, seg_flags};
use oxide86_cpu::{Bus, Cpu, CpuModel, SegReg, SegmentCache, StepOutcome};

use crate::setup;

/// Instructions run per input at most.
pub const MAX_STEPS: usize = 64;
/// Guest RAM: the first MiB plus the HMA, so every real-mode address is RAM.
const RAM_SIZE: usize = 0x11_0000;
/// Where the header ends and guest code begins.
const HEADER: usize = 74;

/// A RAM bus that remembers which bytes a run wrote, so the next run starts
/// from the same contents without copying the whole RAM back.
#[derive(Debug)]
struct UndoRam {
    bytes: Vec<u8>,
    pristine: Vec<u8>,
    dirty: Vec<u32>,
    /// Offer the CPU direct access to RAM pages ([`Bus::ram`]); the pages
    /// handed out are remembered in `pages` and restored whole.
    direct: bool,
    pages: Vec<u32>,
}

impl UndoRam {
    fn new() -> Self {
        // A fixed, busy pattern: interrupt vectors and pointers read from
        // memory point all over the place.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let pristine: Vec<u8> = (0..RAM_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Self {
            bytes: pristine.clone(),
            pristine,
            dirty: Vec::new(),
            direct: false,
            pages: Vec::new(),
        }
    }

    /// Restores every byte written since the last restore.
    fn restore(&mut self) {
        for a in self.dirty.drain(..) {
            self.bytes[a as usize] = self.pristine[a as usize];
        }
        for p in self.pages.drain(..) {
            let r = p as usize..p as usize + 0x1000;
            self.bytes[r.clone()].copy_from_slice(&self.pristine[r]);
        }
    }

    fn poke(&mut self, addr: u32, value: u8) {
        if let Some(b) = self.bytes.get_mut(addr as usize) {
            *b = value;
            self.dirty.push(addr);
        }
    }
}

impl Bus for UndoRam {
    fn ram(&mut self) -> Option<&mut [u8]> {
        self.direct.then_some(&mut self.bytes[..])
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        let page = paddr & !0xFFF;
        if !self.direct || page as usize + 0x1000 > self.bytes.len() {
            return None;
        }
        self.pages.push(page);
        Some(page as usize)
    }
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.bytes.get(addr as usize).copied().unwrap_or(0xFF)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.poke(addr, value);
    }
}

/// Reusable fuzzing state: one processor per model (so their decode caches
/// never mix models) and the RAM. Each run starts from the same RAM.
#[derive(Debug)]
pub struct Harness {
    cpus: Vec<Cpu>,
    ram: UndoRam,
    /// Run with [`Cpu::run`] rather than [`Cpu::step`] per instruction.
    use_run: bool,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads byte `i` of the input, zero past its end.
fn byte(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// Reads a little-endian value of `n` bytes at `i`.
fn le(data: &[u8], i: usize, n: usize) -> u32 {
    (0..n).fold(0, |v, k| v | u32::from(byte(data, i + k)) << (8 * k))
}

impl Harness {
    /// A harness with fresh processors and RAM.
    pub fn new() -> Self {
        let cpus = [CpuModel::I8086, CpuModel::I286, CpuModel::P6]
            .map(Cpu::new)
            .into();
        Self {
            cpus,
            ram: UndoRam::new(),
            use_run: false,
        }
    }

    /// Runs one input (see the module documentation); returns how the last
    /// step ended. Never panics unless the interpreter does.
    pub fn run_one(&mut self, data: &[u8]) -> StepOutcome {
        self.ram.restore();
        let mode = byte(data, 0) % 5;
        let model = match mode {
            0 => CpuModel::I8086,
            1 => CpuModel::I286,
            _ => CpuModel::P6,
        };
        let cpu = &mut self.cpus[model as usize];
        // The previous run's writes were undone behind the decode cache's back.
        cpu.icache.invalidate(0, RAM_SIZE as u32);
        cpu.state = oxide86_cpu::CpuState::new(model);
        cpu.tlb.flush(false);
        cpu.pdptes = None;
        cpu.unimplemented = None;
        cpu.last_exception = None;
        cpu.shutdown_reason = None;
        cpu.debug_hits = 0;
        let eip = le(data, 49, 2);
        if mode >= 3 {
            setup::set_flat32(cpu, eip);
        }
        let s = &mut cpu.state;
        for (r, v) in s.gpr.iter_mut().enumerate() {
            *v = le(data, 1 + 4 * r, 4);
        }
        s.gpr[1] &= 0xFFFF; // ECX: bounded REP and LOOP counts
        s.gpr[4] = 0x1000 + (s.gpr[4] & 0xEFFE); // ESP within RAM, even
        let flags_in = le(data, 33, 4);
        let keep = eflags::STATUS
            | eflags::TF
            | eflags::IF
            | eflags::DF
            | eflags::IOPL
            | eflags::NT
            | eflags::AC;
        s.eflags = (flags_in & keep) | eflags::RESERVED1;
        let cr0_in = u32::from(byte(data, 51));
        if model == CpuModel::P6 {
            s.cr0 |= le(data, 51, 4) & (cr0::MP | cr0::EM | cr0::TS | cr0::NE | cr0::AM);
            s.cr4 =
                u32::from(byte(data, 52)) & (cr4::VME | cr4::PVI | cr4::TSD | cr4::DE | cr4::PSE);
            s.dr[7] = le(data, 53, 4);
            for n in 0..4 {
                s.dr[n] = le(data, 57 + 4 * n, 4) & 0x1_FFFF;
            }
            if mode >= 3 && cr0_in & 0x80 != 0 {
                s.cr3 = u32::from(byte(data, 73)) << 12;
                s.cr0 |= cr0::PG;
            }
        }
        if mode != 3 {
            for (i, seg) in SegReg::ALL.into_iter().enumerate() {
                // Bases below 64 KiB keep most of each segment in RAM.
                let selector = le(data, 37 + 2 * i, 2) as u16 & 0x0FFF;
                if mode == 4 {
                    let mut cache = SegmentCache::real_mode(selector);
                    cache.flags |= 3 << seg_flags::DPL_SHIFT;
                    s.seg[seg as usize] = cache;
                } else {
                    s.set_real_mode_segment(seg, selector);
                }
            }
            if mode == 4 {
                s.eflags |= eflags::VM;
            }
        }
        s.eip = eip;
        let cs_base = s.seg[SegReg::Cs as usize].base;
        let code = data.get(HEADER..).unwrap_or_default();
        let mask = if mode == 3 { u32::MAX } else { 0xFFFF };
        for (i, b) in code.iter().enumerate() {
            let off = eip.wrapping_add(i as u32) & mask;
            self.ram.poke(cs_base.wrapping_add(off), *b);
        }
        cpu.update_breakpoints();
        if self.use_run {
            return cpu.run(&mut self.ram, MAX_STEPS as u64);
        }
        let mut outcome = StepOutcome::Continue;
        for _ in 0..MAX_STEPS {
            outcome = cpu.step(&mut self.ram);
            if outcome != StepOutcome::Continue {
                break;
            }
        }
        outcome
    }
}

thread_local! {
    static HARNESS: std::cell::RefCell<Harness> = std::cell::RefCell::new(Harness::new());
}

/// Runs one fuzz input on this thread's [`Harness`].
pub fn run_one(data: &[u8]) {
    HARNESS.with(|h| {
        h.borrow_mut().run_one(data);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed xorshift64 stream.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = XorShift(0x0DDB_1A5E_5BAD_5EED);
        let mut h = Harness::new();
        let mut data = Vec::with_capacity(128);
        for _ in 0..200_000 {
            let len = HEADER + (rng.next() % 64) as usize;
            data.clear();
            while data.len() < len {
                data.extend_from_slice(&rng.next().to_le_bytes());
            }
            data.truncate(len);
            h.run_one(&data);
        }
    }

    #[test]
    #[ignore = "diagnostic: prints the slowest inputs of the stream"]
    fn slowest_inputs() {
        let mut rng = XorShift(0x0DDB_1A5E_5BAD_5EED);
        let mut h = Harness::new();
        let mut slow = Vec::new();
        for _ in 0..20_000 {
            let len = HEADER + (rng.next() % 64) as usize;
            let mut data = Vec::new();
            while data.len() < len {
                data.extend_from_slice(&rng.next().to_le_bytes());
            }
            data.truncate(len);
            let t = std::time::Instant::now();
            h.run_one(&data);
            slow.push((t.elapsed(), data));
        }
        slow.sort_by_key(|s| std::cmp::Reverse(s.0));
        let total: std::time::Duration = slow.iter().map(|s| s.0).sum();
        eprintln!("total {total:?}");
        for (t, d) in slow.iter().take(5) {
            eprintln!("{t:?} mode {} {:02x?}", d[0] % 5, &d[HEADER..]);
        }
    }

    /// `Cpu::run` (which skips the per-instruction interrupt and debug
    /// checks after quiet instructions and fetches through its fetch
    /// window) leaves exactly the state and memory that single steps do,
    /// with the RAM fast path offered to both.
    #[test]
    fn run_matches_single_steps() {
        let mut rng = XorShift(0x5EED_0F4A_5700_0001);
        let mut stepped = Harness::new();
        let mut ran = Harness::new();
        stepped.ram.direct = true;
        ran.ram.direct = true;
        ran.use_run = true;
        let mut data = Vec::with_capacity(128);
        for n in 0..20_000 {
            let len = HEADER + (rng.next() % 64) as usize;
            data.clear();
            while data.len() < len {
                data.extend_from_slice(&rng.next().to_le_bytes());
            }
            data.truncate(len);
            let a = stepped.run_one(&data);
            let b = ran.run_one(&data);
            let model = match byte(&data, 0) % 5 {
                0 => 0,
                1 => 1,
                _ => 2,
            };
            let (sa, sb) = (&stepped.cpus[model].state, &ran.cpus[model].state);
            assert_eq!(
                (a, format!("{sa:?}")),
                (b, format!("{sb:?}")),
                "input {n}: {data:02x?}"
            );
            assert!(
                stepped.ram.bytes == ran.ram.bytes,
                "input {n}: memory differs"
            );
        }
    }

    #[test]
    fn runs_are_independent_of_earlier_runs() {
        let mut h = Harness::new();
        // mode 3 (flat 32), EIP 0x1000: mov [0x2000], eax; mov ebx, [0x2000]
        let mut a = vec![0u8; HEADER];
        a[0] = 3;
        a[1..5].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        a[49..51].copy_from_slice(&0x1000u16.to_le_bytes());
        a.extend_from_slice(&[0xA3, 0x00, 0x20, 0, 0, 0x8B, 0x1D, 0x00, 0x20, 0, 0, 0xF4]);
        assert_eq!(h.run_one(&a), StepOutcome::Halted);
        let first = h.cpus[2].state.gpr[3];
        let mut b = a.clone();
        b.truncate(HEADER);
        b.extend_from_slice(&[0x8B, 0x1D, 0x00, 0x20, 0, 0, 0xF4]); // only the load
        h.run_one(&b);
        assert_ne!(
            h.cpus[2].state.gpr[3], first,
            "the store of the first run leaked"
        );
        assert_eq!(h.run_one(&a), StepOutcome::Halted);
        assert_eq!(h.cpus[2].state.gpr[3], first);
    }
}
