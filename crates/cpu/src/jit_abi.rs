//! What a block translator (the `oxide86-jit` crate) needs from the CPU
//! beyond its public state: decoding through the interpreter's decode cache
//! (so translated code is covered by the same code-line bitmap and the
//! same write invalidation), and running one decoded instruction in the
//! interpreter exactly as [`Cpu::step`] does.

use crate::bus::Bus;
use crate::cpu::{Cpu, InsnContext, StepOutcome};
use crate::decode::{Decoded, MAX_INSN_LEN};
use crate::exception::Exception;
use crate::interp;
use crate::state::eflags;

/// One guest instruction as a translator sees it.
#[derive(Clone, Copy, Debug)]
pub struct FetchedInsn {
    /// The decoding (iced-x86, decoded at IP 0: branch targets are relative).
    pub decoded: Decoded,
    /// Physical address of its first byte.
    pub paddr: u32,
    /// For an instruction that runs on into the next page: its bytes
    /// (the first `decoded.insn.len()` count). The decode cache holds no
    /// such instruction and marks none of its lines as code, so writes to
    /// them are not reported and the next page's mapping may change under
    /// a translation: it must compare these bytes with memory each time,
    /// through the soft TLB's fetch rights, before it runs the instruction.
    pub crossing: Option<[u8; MAX_INSN_LEN]>,
}

impl Cpu {
    /// Fetches and decodes the instruction at CS:`eip` with the current
    /// mode, through the decode cache, as the interpreter would. The
    /// decode cache keeps the bytes' lines marked as code, so any later
    /// write to them reaches [`crate::decode::DecodeCache::invalidate`].
    /// An instruction that crosses into the next page (both pages RAM)
    /// comes with its bytes ([`FetchedInsn::crossing`]). `Ok(None)` when
    /// the instruction is not cacheable otherwise (it wraps, or lies
    /// partly outside RAM): a translator must leave it to the interpreter.
    pub fn fetch_for_translation<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        eip: u32,
    ) -> Result<Option<FetchedInsn>, Exception> {
        let saved_eip = self.state.eip;
        let saved_ctx = self.ctx;
        self.state.eip = eip;
        let r = self.fetch_decode(bus);
        self.state.eip = saved_eip;
        self.ctx = saved_ctx;
        let fresh = r?;
        let insn = fresh.insn;
        let lin = self.state.seg[crate::state::SegReg::Cs as usize]
            .base
            .wrapping_add(eip);
        let user = self.user_access();
        let paddr = self.translate(bus, lin, crate::memory::Access::Execute, user)?;
        let code32 = self.state.code32();
        let Some(d) = self.icache.lookup(paddr, code32) else {
            let crossing = self.crossing_bytes(bus, eip, paddr, insn.len());
            return Ok(crossing.map(|bytes| FetchedInsn {
                decoded: fresh,
                paddr,
                crossing: Some(bytes),
            }));
        };
        if d.insn.code() != insn.code() || d.insn.len() != insn.len() {
            return Ok(None);
        }
        Ok(Some(FetchedInsn {
            decoded: *d,
            paddr,
            crossing: None,
        }))
    }

    /// The `len` bytes of the instruction at CS:`eip` (first byte at
    /// `paddr`) when they run on into the next page without wrapping the
    /// instruction pointer and every byte is in RAM; `None` otherwise.
    fn crossing_bytes<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        eip: u32,
        paddr: u32,
        len: usize,
    ) -> Option<[u8; MAX_INSN_LEN]> {
        let mask = self.ip_mask();
        let last = eip.wrapping_add(len as u32 - 1) & mask;
        if (paddr & 0xFFF) as usize + len <= 0x1000 || last < eip || len > MAX_INSN_LEN {
            return None;
        }
        let user = self.user_access();
        let mut bytes = [0u8; MAX_INSN_LEN];
        for (i, byte) in bytes.iter_mut().enumerate().take(len) {
            let lin = self
                .linear(
                    crate::SegReg::Cs,
                    eip.wrapping_add(i as u32) & mask,
                    1,
                    crate::memory::Access::Execute,
                )
                .ok()?;
            let p = self
                .translate(bus, lin, crate::memory::Access::Execute, user)
                .ok()?;
            let page = bus.ram_page_offset(p & !0xFFF)?;
            *byte = *bus.ram()?.get(page + (p & 0xFFF) as usize)?;
            if i == 0 || p & 0xFFF == 0 {
                // The generated check reads both pages' TLB entries.
                self.learn_host(bus, lin, p);
            }
        }
        Some(bytes)
    }

    /// Runs one already-decoded instruction at EIP in the interpreter, as
    /// [`Cpu::step`] does after its interrupt checks (the caller has made
    /// sure no interrupt, trap or breakpoint is due): RF and the interrupt
    /// shadow are cleared, the handler runs, and EIP and the instruction
    /// count advance, or the fault is delivered.
    pub fn execute_decoded<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        decoded: &Decoded,
    ) -> StepOutcome {
        self.state.interrupt_shadow = false;
        self.state.eflags &= !eflags::RF;
        let eip = self.state.eip;
        let mask = self.ip_mask();
        self.ctx = InsnContext {
            start_eip: eip,
            next_eip: eip.wrapping_add(decoded.insn.len() as u32) & mask,
            fall_eip: eip.wrapping_add(decoded.insn.len() as u32) & mask,
            addr32: decoded.addr32,
            op32: decoded.op32,
            pop_cs: decoded.pop_cs,
        };
        match interp::execute(self, &decoded.insn, bus) {
            Ok(()) => {
                self.state.eip = self.ctx.next_eip;
                self.state.icount += 1;
                if self.state.halted {
                    StepOutcome::Halted
                } else if std::mem::take(&mut self.paused) {
                    StepOutcome::Paused
                } else {
                    StepOutcome::Continue
                }
            }
            Err(e) => self.raise(bus, e),
        }
    }
}
