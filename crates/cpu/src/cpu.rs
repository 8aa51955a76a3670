//! The processor: architectural state plus the decoded-instruction cache,
//! and the fetch-decode-execute step that the machine's run loop drives.

use crate::bus::Bus;
use crate::debug::{dr6, watch};
use crate::decode::{self, DecodeCache, DecodeError, Decoded, MAX_INSN_LEN};
use crate::exception::Exception;
use crate::flags::Flags;
use crate::interp;
use crate::memory::Access;
use crate::model::CpuModel;
use crate::state::{eflags, CpuState, SegReg};
use crate::tlb::SoftTlb;

/// What one call to [`Cpu::step`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// An instruction retired (or an exception or interrupt was delivered).
    Continue,
    /// The CPU is halted (HLT) with no interrupt to wake it.
    Halted,
    /// A triple fault (or a fault the CPU cannot deliver): the machine
    /// decides whether to reset or stop.
    Shutdown,
}

/// Per-instruction context the handlers read and update.
#[derive(Clone, Copy, Debug, Default)]
pub struct InsnContext {
    /// EIP of the instruction being executed.
    pub start_eip: u32,
    /// Where execution continues; branch handlers overwrite it.
    pub next_eip: u32,
    /// 32-bit addressing for this instruction.
    pub addr32: bool,
    /// 32-bit operand size for this instruction.
    pub op32: bool,
    /// 8086 POP CS (see [`Decoded::pop_cs`]).
    pub pop_cs: bool,
}

/// An x86 processor.
#[derive(Debug)]
pub struct Cpu {
    /// Architectural state (shared with the JIT).
    pub state: CpuState,
    /// Decoded instructions, invalidated by writes to their bytes.
    pub icache: DecodeCache,
    /// Cached linear-to-physical translations.
    pub tlb: SoftTlb,
    /// The bus's memory-map generation the TLB's RAM offsets belong to.
    pub(crate) memory_map_generation: u64,
    /// The instruction in flight.
    pub ctx: InsnContext,
    /// Why the last [`StepOutcome::Shutdown`] happened.
    pub shutdown_reason: Option<String>,
    /// The last instruction that reached no handler (raised #UD because it is
    /// not implemented, rather than because the architecture says so). The
    /// coverage runner reads it.
    pub unimplemented: Option<iced_x86::Code>,
    /// The last exception an instruction raised, recorded before delivery
    /// (the state is still the one the fault left). Conformance runners
    /// that stop at the first fault, such as the host-differential tester,
    /// clear it before [`Cpu::step`] and read it after.
    pub last_exception: Option<Exception>,
    /// Which kinds of hardware breakpoint DR7 arms ([`crate::debug::watch`]
    /// bits); kept by [`Cpu::update_breakpoints`].
    pub debug_watch: u8,
    /// B0-B3 of data breakpoints hit by the instruction in flight.
    pub debug_hits: u8,
    /// The four PAE page-directory-pointer-table entries, loaded by MOV to
    /// CR3/CR0/CR4 with PAE paging (SDM Vol. 3A, 4.4.1), or `None` until
    /// the next walk loads them (after a reset or a task switch's CR3).
    pub pdptes: Option<[u64; 4]>,
    /// The machine wires a local APIC to this processor (CPUID then
    /// reports one while IA32_APIC_BASE enables it). Off by default: the
    /// bare test machines have none.
    pub local_apic: bool,
    /// A host debugger's watchpoints (never visible to the guest).
    pub host_watch: crate::host_watch::HostWatch,
}

impl Cpu {
    /// A processor of `model` in its reset state.
    pub fn new(model: CpuModel) -> Self {
        Self {
            state: CpuState::new(model),
            icache: DecodeCache::new(),
            tlb: SoftTlb::default(),
            memory_map_generation: 0,
            ctx: InsnContext::default(),
            shutdown_reason: None,
            unimplemented: None,
            last_exception: None,
            debug_watch: 0,
            debug_hits: 0,
            pdptes: None,
            local_apic: false,
            host_watch: crate::host_watch::HostWatch::default(),
        }
    }

    /// Returns to the reset state (the decode cache is flushed too).
    pub fn reset(&mut self) {
        self.state = CpuState::new(self.state.model);
        self.icache.flush();
        self.tlb.flush(false);
        self.pdptes = None;
        self.shutdown_reason = None;
        self.update_breakpoints();
    }

    /// Records that `insn` reached no handler and returns the #UD it raises.
    pub fn note_unimplemented(&mut self, insn: &iced_x86::Instruction) -> Exception {
        self.unimplemented = Some(insn.code());
        Exception::InvalidOpcode
    }

    /// The instruction-pointer mask for the current code size.
    #[inline]
    pub fn ip_mask(&self) -> u32 {
        if self.state.code32() {
            0xFFFF_FFFF
        } else {
            0xFFFF
        }
    }

    /// Executes one instruction, or delivers one pending interrupt.
    pub fn step<B: Bus + ?Sized>(&mut self, bus: &mut B) -> StepOutcome {
        self.step_inline(bus)
    }

    /// [`Cpu::step`], inlined into [`Cpu::run`]'s loop so the hot path
    /// pays no call, prologue or epilogue per instruction.
    #[inline(always)]
    fn step_inline<B: Bus + ?Sized>(&mut self, bus: &mut B) -> StepOutcome {
        let shadow = std::mem::take(&mut self.state.interrupt_shadow);
        if !shadow && !self.state.nmi_blocked && bus.take_nmi() {
            self.state.halted = false;
            self.state.nmi_blocked = true;
            let eip = self.state.eip;
            return self.deliver(bus, 2, eip, crate::interrupt::Source::External);
        }
        if !shadow && self.state.eflags & eflags::IF != 0 && bus.interrupt_pending() {
            if let Some(vector) = bus.interrupt_ack() {
                self.state.halted = false;
                let eip = self.state.eip;
                return self.deliver(bus, vector, eip, crate::interrupt::Source::External);
            }
        }
        if self.state.halted {
            return StepOutcome::Halted;
        }
        // Single-step traps after an instruction that began with TF set,
        // including one in an STI shadow on the 386+; MOV SS and POP SS
        // delay their own trap to the next instruction (SDM Vol. 3A, 6.8.3
        // and 17.3.1.4). The older models skip the instruction after any
        // shadow.
        let trap =
            self.state.eflags & eflags::TF != 0 && (!shadow || self.state.model == CpuModel::P6);
        if self.debug_watch != 0 {
            if let Some(outcome) = self.check_instruction_breakpoint(bus) {
                return outcome;
            }
            self.debug_hits = 0;
        }
        // RF is cleared at the start of every instruction, after the
        // instruction-breakpoint check (SDM Vol. 3A, 17.3.1.1); IRET and
        // task switches load it again.
        self.state.eflags &= !eflags::RF;
        // fetch_decode fills self.ctx and copies the instruction into
        // `insn` straight from the decode cache.
        let mut insn = iced_x86::Instruction::default();
        if let Err(e) = self.fetch_decode(bus, &mut insn) {
            return self.raise(bus, e);
        }
        match interp::execute(self, &insn, bus) {
            Ok(()) => {
                self.state.eip = self.ctx.next_eip;
                self.state.icount += 1;
                let hits = if self.debug_watch != 0 {
                    u32::from(std::mem::take(&mut self.debug_hits))
                } else {
                    0
                };
                let trap = trap && !(self.state.interrupt_shadow && loads_ss(&insn));
                if trap || hits != 0 {
                    // Single-step and data breakpoints are traps reported
                    // together by one #DB after the instruction.
                    let eip = self.state.eip;
                    let mut dr6 = self.state.dr[6];
                    if hits != 0 {
                        dr6 = (dr6 & !dr6::B_MASK) | hits;
                    }
                    if trap {
                        dr6 |= dr6::BS;
                    }
                    self.state.dr[6] = dr6;
                    return self.deliver(
                        bus,
                        1,
                        eip,
                        crate::interrupt::Source::Exception(Exception::Debug),
                    );
                }
                if self.state.halted {
                    return StepOutcome::Halted;
                }
                StepOutcome::Continue
            }
            Err(e) => self.raise(bus, e),
        }
    }

    /// Raises the instruction-breakpoint #DB (a fault: EIP stays on the
    /// instruction, RF is pushed as it is) when an enabled DR0-DR3 execute
    /// breakpoint matches CS:EIP and EFLAGS.RF is clear.
    fn check_instruction_breakpoint<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
    ) -> Option<StepOutcome> {
        if self.debug_watch & watch::EXEC == 0 || self.state.eflags & eflags::RF != 0 {
            return None;
        }
        let linear = self.state.seg[SegReg::Cs as usize]
            .base
            .wrapping_add(self.state.eip);
        let hits = self.instruction_breakpoints(linear);
        if hits == 0 {
            return None;
        }
        self.state.dr[6] = (self.state.dr[6] & !dr6::B_MASK) | hits;
        self.last_exception = Some(Exception::Debug);
        let eip = self.state.eip;
        Some(self.deliver(
            bus,
            1,
            eip,
            crate::interrupt::Source::Exception(Exception::Debug),
        ))
    }

    /// Runs until HLT, shutdown, or `max` instructions; returns the last outcome.
    pub fn run<B: Bus + ?Sized>(&mut self, bus: &mut B, max: u64) -> StepOutcome {
        for _ in 0..max {
            let o = self.step_inline(bus);
            if o != StepOutcome::Continue {
                return o;
            }
        }
        StepOutcome::Continue
    }

    /// Sets up [`Cpu::ctx`] for a `len`-byte instruction at EIP.
    #[inline]
    fn begin(&mut self, len: u32, addr32: bool, op32: bool, pop_cs: bool, code32: bool) {
        let eip = self.state.eip;
        let mask = if code32 { 0xFFFF_FFFF } else { 0xFFFF };
        self.ctx = InsnContext {
            start_eip: eip,
            next_eip: eip.wrapping_add(len) & mask,
            addr32,
            op32,
            pop_cs,
        };
    }

    /// Fetches and decodes the instruction at CS:EIP into `out`, through
    /// the cache, and sets up [`Cpu::ctx`] for it.
    #[inline]
    pub(crate) fn fetch_decode<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        out: &mut iced_x86::Instruction,
    ) -> Result<(), Exception> {
        let code32 = self.state.code32();
        let eip = self.state.eip;
        let lin = self.linear(SegReg::Cs, eip, 1, Access::Execute)?;
        let user = self.user_access();
        let paddr = self.translate(bus, lin, Access::Execute, user)?;
        if let Some(d) = self.icache.lookup(paddr, code32) {
            let (addr32, op32, pop_cs) = (d.addr32, d.op32, d.pop_cs);
            *out = d.insn;
            self.begin(out.len() as u32, addr32, op32, pop_cs, code32);
            return Ok(());
        }
        let d = self.fetch_decode_slow(bus, code32, lin, paddr)?;
        *out = d.insn;
        self.begin(out.len() as u32, d.addr32, d.op32, d.pop_cs, code32);
        Ok(())
    }

    /// The decode-cache miss path: reads the bytes, decodes and caches.
    #[cold]
    #[inline(never)]
    fn fetch_decode_slow<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        code32: bool,
        lin: u32,
        paddr: u32,
    ) -> Result<Decoded, Exception> {
        let eip = self.state.eip;
        let user = self.user_access();
        // Read up to 15 bytes, stopping at the first one that would fault.
        let mut bytes = [0u8; MAX_INSN_LEN];
        let mut n = 0;
        let mut fault = None;
        let mask = self.ip_mask();
        while n < MAX_INSN_LEN {
            let off = eip.wrapping_add(n as u32) & mask;
            let byte = self
                .linear(SegReg::Cs, off, 1, Access::Execute)
                .and_then(|l| {
                    self.translate(bus, l, Access::Execute, user)
                        .map(|p| (l, p))
                });
            match byte {
                Ok((_, p)) => {
                    bytes[n] = bus.read_u8(p);
                    n += 1;
                }
                Err(e) => {
                    fault = Some(e);
                    break;
                }
            }
        }
        match decode::decode(&bytes[..n], code32, self.state.model) {
            Ok(d) => {
                let len = d.insn.len() as u32;
                let same_page = (paddr & 0xFFF) + len <= 0x1000;
                let no_wrap = eip.wrapping_add(len - 1) & mask >= eip;
                if same_page && no_wrap && self.state.model != CpuModel::I8086 {
                    self.icache.insert(paddr, code32, d);
                    self.tlb.forget_host_writes(paddr & !0xFFF);
                } else if same_page && no_wrap {
                    // The 8086 wraps linear addresses at 1 MiB on the bus, so
                    // only cache where linear and bus address agree.
                    if lin < 0x10_0000 - len {
                        self.icache.insert(paddr, code32, d);
                        self.tlb.forget_host_writes(paddr & !0xFFF);
                    }
                }
                Ok(d)
            }
            Err(DecodeError::Invalid) => Err(Exception::InvalidOpcode),
            Err(DecodeError::TooLong) => Err(Exception::GeneralProtection(0)),
            Err(DecodeError::NeedMoreBytes) => {
                Err(fault.unwrap_or(Exception::GeneralProtection(0)))
            }
        }
    }

    /// The FLAGS image as this model reads it: bit 1 set, bits 3/5/15 clear,
    /// bits 12-15 set on the 8086 and clear on a 286 in real mode.
    pub fn flags_image(&self) -> u32 {
        let f = (self.state.flags() | eflags::RESERVED1) & !0x8028;
        match self.state.model {
            CpuModel::I8086 => (f | 0xF000) & 0xFFFF,
            CpuModel::I286 if !self.state.protected_mode() => f & 0x0FFF,
            CpuModel::I286 => f & 0x7FFF,
            CpuModel::P6 => f,
        }
    }

    /// Loads FLAGS/EFLAGS from POPF, IRET or a task switch: `width` is 2 or
    /// 4 bytes; IOPL changes only at CPL 0 and IF only at CPL <= IOPL
    /// (SDM Vol. 2B, POPF). VM and RF are not loaded from here.
    pub fn load_flags(&mut self, value: u32, width: u32) {
        let s = &mut self.state;
        let cpl = u32::from(s.cpl());
        let iopl = (s.eflags & eflags::IOPL) >> 12;
        let mut writable =
            eflags::STATUS | eflags::TF | eflags::DF | eflags::NT | eflags::IF | eflags::IOPL;
        if width == 4 {
            writable |= eflags::AC | eflags::ID;
        }
        if s.model == CpuModel::P6 && s.cr0 & crate::state::cr0::PE != 0 {
            if cpl > 0 {
                writable &= !eflags::IOPL;
            }
            if cpl > iopl {
                writable &= !eflags::IF;
            }
        }
        match s.model {
            CpuModel::I8086 => writable &= 0x0FFF,
            CpuModel::I286 if s.cr0 & crate::state::cr0::PE == 0 => writable &= 0x0FFF,
            _ => {}
        }
        s.commit_flags();
        s.eflags = (s.eflags & !writable) | (value & writable) | eflags::RESERVED1;
    }
}

/// MOV SS or POP SS: the instructions whose interrupt shadow also holds
/// off debug traps (STI's does not).
fn loads_ss(insn: &iced_x86::Instruction) -> bool {
    matches!(
        insn.mnemonic(),
        iced_x86::Mnemonic::Mov | iced_x86::Mnemonic::Pop
    ) && insn.op_kind(0) == iced_x86::OpKind::Register
        && insn.op0_register() == iced_x86::Register::SS
}
