//! The processor: architectural state plus the decoded-instruction cache,
//! and the fetch-decode-execute step that the machine's run loop drives.

use crate::bus::Bus;
use crate::debug::{dr6, watch};
use crate::decode::{self, DecodeCache, DecodeError, Decoded, MAX_INSN_LEN};
use crate::exception::Exception;
use crate::flags::Flags;
use crate::interp::fast::Ran;
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
    /// PAUSE retired while [`Cpu::pause_exits`] is set: the guest spins
    /// waiting for something (a time, a device), and the machine may let
    /// time pass before the next instruction.
    Paused,
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
    /// The instruction after this one (`start_eip` plus its length).
    pub fall_eip: u32,
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
    /// PAUSE ends the step with [`StepOutcome::Paused`] (the machine sets
    /// it under its virtual clock); otherwise PAUSE is a NOP.
    pub pause_exits: bool,
    /// Set by PAUSE under `pause_exits` until the step reports it.
    pub(crate) paused: bool,
    /// A host debugger's watchpoints (never visible to the guest).
    pub host_watch: crate::host_watch::HostWatch,
    /// Set when an access of the instruction in flight left the RAM fast
    /// path (a page walk, MMIO, ROM, a page-crossing access, a write to a
    /// code page): it may have reached a device, so [`Cpu::run`] repeats
    /// its interrupt checks before the next instruction.
    pub(crate) bus_event: bool,
    /// Where the last fully checked fetch found its code page (see
    /// [`FetchWindow`]).
    fetch: FetchWindow,
    /// Set while [`Cpu::run`] executes a quiet instruction of a quiet run:
    /// data accesses may use and fill `data_windows`.
    pub(crate) data_fast: bool,
    /// Which `data_windows` are valid (bit `2 * segment + write`); cleared
    /// when a quiet run starts and by every access off the RAM fast path.
    pub(crate) data_valid: u16,
    /// Per segment register and access kind (read, write), the offsets the
    /// last fast-path access's page covers (see [`DataWindow`]).
    pub(crate) data_windows: [DataWindow; 12],
    /// The exception of the last handler that returned `false` (see
    /// [`crate::interp::Handler`]).
    pub(crate) fault: Exception,
    /// REP string instructions may run chunks of elements directly in RAM
    /// (see `interp::string_bulk`). On by default; the tests clear it to
    /// compare with the element-by-element path, which must leave the same
    /// state.
    pub(crate) string_bulk: bool,
}

/// The offsets `lo..=hi` of one segment that map into one linear page of
/// plain RAM and pass the segment checks for one kind of access, and the
/// RAM offset of `lo`. Filled during a quiet run (see [`Cpu::run`]), in
/// which no segment, mode, privilege, flag that the checks read, or soft
/// TLB entry can change (anything that could ends the run), so a data
/// access inside a window needs neither the segment checks nor the TLB.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DataWindow {
    /// First offset.
    pub(crate) lo: u32,
    /// Last offset (inclusive).
    pub(crate) hi: u32,
    /// RAM offset of `lo` in [`Bus::ram`].
    pub(crate) host_lo: usize,
}

/// The EIP range around the last fully checked instruction fetch that lies
/// in the same 4 KiB linear page and inside the CS limit, and the physical
/// address it maps to. [`Cpu::run`] fetches through it while only quiet
/// instructions run (nothing that could change CS, the mode, CR0/CR3/CR4
/// or the soft TLB), so it needs no invalidation of its own.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FetchWindow {
    /// First EIP of the window.
    eip_lo: u32,
    /// Last EIP of the window (inclusive).
    eip_hi: u32,
    /// Physical address of `eip_lo`.
    paddr_lo: u32,
    /// The code size the window was filled for.
    code32: bool,
}

impl Cpu {
    /// A processor of `model` in its reset state.
    pub fn new(model: CpuModel) -> Self {
        Self::with_decode_cache(model, DecodeCache::new())
    }

    /// [`Cpu::new`] with a decoded-instruction cache of the caller's size
    /// ([`DecodeCache::with_entries`]).
    pub fn with_decode_cache(model: CpuModel, icache: DecodeCache) -> Self {
        Self {
            state: CpuState::new(model),
            icache,
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
            bus_event: false,
            pause_exits: false,
            paused: false,
            fetch: FetchWindow::default(),
            data_fast: false,
            data_valid: 0,
            data_windows: [DataWindow::default(); 12],
            fault: Exception::InvalidOpcode,
            string_bulk: true,
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

    /// Makes this CPU a copy of `other` in everything but the decode cache,
    /// which keeps its own contents: the twin that the JIT's verify mode
    /// (`--jit-verify`) runs the interpreter on, starting from the state a
    /// translated block started from. Host watchpoints are not copied (a
    /// twin's accesses are not the guest's), and the quiet-run data
    /// windows start empty.
    pub fn mirror(&mut self, other: &Cpu) {
        // Every field is named, so a new one cannot be forgotten here.
        let Cpu {
            state,
            icache: _,
            tlb,
            memory_map_generation,
            ctx,
            shutdown_reason,
            unimplemented,
            last_exception,
            debug_watch,
            debug_hits,
            pdptes,
            local_apic,
            pause_exits,
            paused,
            host_watch: _,
            bus_event,
            fetch,
            data_fast: _,
            data_valid: _,
            data_windows: _,
            // Scratch for the handler running now (none between steps).
            fault: _,
            string_bulk,
        } = other;
        self.state.clone_from(state);
        self.tlb.copy_from(tlb);
        self.memory_map_generation = *memory_map_generation;
        self.ctx = *ctx;
        self.shutdown_reason.clone_from(shutdown_reason);
        self.unimplemented = *unimplemented;
        self.last_exception = *last_exception;
        self.debug_watch = *debug_watch;
        self.debug_hits = *debug_hits;
        self.pdptes = *pdptes;
        self.local_apic = *local_apic;
        self.pause_exits = *pause_exits;
        self.paused = *paused;
        self.host_watch = crate::host_watch::HostWatch::default();
        self.bus_event = *bus_event;
        self.fetch = *fetch;
        self.data_fast = false;
        self.data_valid = 0;
        self.string_bulk = *string_bulk;
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
        self.step_inline(bus).0
    }

    /// [`Cpu::step`], inlined into [`Cpu::run`]'s loop so the hot path
    /// pays no call, prologue or epilogue per instruction. Also says whether
    /// the next instruction may skip the checks made before an instruction
    /// (see [`Cpu::run`]): the checks found nothing to do, the instruction
    /// retired quietly and no access of it left the RAM fast path.
    #[inline(always)]
    fn step_inline<B: Bus + ?Sized>(&mut self, bus: &mut B) -> (StepOutcome, bool) {
        let shadow = std::mem::take(&mut self.state.interrupt_shadow);
        if !shadow && !self.state.nmi_blocked && bus.take_nmi() {
            self.state.halted = false;
            self.state.nmi_blocked = true;
            let eip = self.state.eip;
            let o = self.deliver(bus, 2, eip, crate::interrupt::Source::External);
            return (o, false);
        }
        // A pending request the PIC then withdraws (spurious) is asked
        // about again before the next instruction.
        let mut checked = !shadow;
        if !shadow && self.state.eflags & eflags::IF != 0 && bus.interrupt_pending() {
            if let Some(vector) = bus.interrupt_ack() {
                self.state.halted = false;
                let eip = self.state.eip;
                let o = self.deliver(bus, vector, eip, crate::interrupt::Source::External);
                return (o, false);
            }
            checked = false;
        }
        if self.state.halted {
            return (StepOutcome::Halted, false);
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
                return (outcome, false);
            }
            self.debug_hits = 0;
        }
        // RF is cleared at the start of every instruction, after the
        // instruction-breakpoint check (SDM Vol. 3A, 17.3.1.1); IRET and
        // task switches load it again.
        self.state.eflags &= !eflags::RF;
        self.bus_event = false;
        // fetch_decode fills self.ctx and copies the decoded instruction
        // straight from the decode cache.
        let d = match self.fetch_decode(bus) {
            Ok(d) => d,
            Err(e) => return (self.raise(bus, e), false),
        };
        match d.op.handler()(self, &d, bus) {
            true => {
                self.state.eip = self.ctx.next_eip;
                self.state.icount += 1;
                let hits = if self.debug_watch != 0 {
                    u32::from(std::mem::take(&mut self.debug_hits))
                } else {
                    0
                };
                let trap = trap && !(self.state.interrupt_shadow && loads_ss(&d.insn));
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
                    let o = self.deliver(
                        bus,
                        1,
                        eip,
                        crate::interrupt::Source::Exception(Exception::Debug),
                    );
                    return (o, false);
                }
                if self.state.halted {
                    return (StepOutcome::Halted, false);
                }
                if std::mem::take(&mut self.paused) {
                    return (StepOutcome::Paused, false);
                }
                // A quiet instruction cannot set TF, the shadow, HLT or DR7.
                let fast = checked && d.quiet && !trap && self.debug_watch == 0 && !self.bus_event;
                (StepOutcome::Continue, fast)
            }
            false => (self.raise(bus, self.fault), false),
        }
    }

    /// One instruction of a quiet run (see [`Cpu::run`]) at `eip` (which
    /// is `state.eip`, kept in a register by the caller): the checks before
    /// the instruction are known to find nothing, and the fetch goes through
    /// the [`FetchWindow`] `w`. `None` (nothing done) when EIP left the
    /// window or the decode cache misses: the caller takes a full step
    /// instead. Else the outcome, whether the run may go on quietly, and the
    /// new EIP. The decode-cache hit is the caller's to count.
    ///
    /// The loop-carried chain (EIP -> slot -> length -> next EIP) is kept
    /// in registers: for forms that never branch ([`Decoded::falls_through`])
    /// the next EIP is not read back from `ctx`.
    #[inline(always)]
    fn step_quiet<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        w: FetchWindow,
        eip: u32,
    ) -> Option<(StepOutcome, bool, u32)> {
        let delta = eip.wrapping_sub(w.eip_lo);
        if delta > w.eip_hi - w.eip_lo {
            return None;
        }
        let paddr = w.paddr_lo.wrapping_add(delta);
        let d = self.icache.lookup_hit_ptr(paddr, w.code32)?;
        // SAFETY: `d` points into the decode cache's slot array, which is
        // allocated once and never resized, and whose slots only
        // `DecodeCache::insert` writes; insert runs only on the fetch path
        // (never inside a handler), so the slot is neither moved nor
        // written while this reference lives. Borrowing it instead of
        // copying the entry per instruction is what makes this worth it.
        let d = unsafe { &*d };
        let mask = if w.code32 { 0xFFFF_FFFF } else { 0xFFFF };
        let next = eip.wrapping_add(d.insn.len() as u32) & mask;
        self.ctx = InsnContext {
            start_eip: eip,
            next_eip: next,
            fall_eip: next,
            addr32: d.addr32,
            op32: d.op32,
            pop_cs: d.pop_cs,
        };
        self.data_fast = d.quiet;
        let retired = d.op.handler()(self, d, bus);
        self.data_fast = false;
        match retired {
            true => {
                let eip = if d.falls_through {
                    next
                } else {
                    self.ctx.next_eip
                };
                self.state.eip = eip;
                self.state.icount += 1;
                let mut quiet = d.quiet;
                if self.bus_event {
                    self.bus_event = false;
                    quiet = false;
                }
                Some((StepOutcome::Continue, quiet, eip))
            }
            false => Some((self.raise(bus, self.fault), false, 0)),
        }
    }

    /// A block of a quiet run (see [`crate::block`]) from `eip` (which is
    /// `state.eip`), fetched through the [`FetchWindow`] `w`: up to `left`
    /// instructions, each exactly as [`Cpu::step_quiet`] runs it, until
    /// the block ends or an instruction leaves it (a taken branch, a REP
    /// iteration), is not quiet, faults or leaves the RAM fast path.
    /// `None` (nothing done) when there is no block at `eip` or it does not
    /// lie wholly inside the window. Else the outcome, whether the run may
    /// go on quietly, the new EIP, the number of steps taken and whether
    /// the last one went elsewhere than the instruction after it.
    #[inline(always)]
    fn run_block<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        w: FetchWindow,
        eip: u32,
        left: u64,
    ) -> Option<(StepOutcome, bool, u32, u64, bool)> {
        let delta = eip.wrapping_sub(w.eip_lo);
        let room = w.eip_hi - w.eip_lo;
        if delta > room {
            return None;
        }
        let paddr = w.paddr_lo.wrapping_add(delta);
        let b = self.icache.block(paddr, w.code32)?;
        // Every instruction's first byte must be inside the window (the
        // CS limit, the page, and the IP mask of 16-bit code).
        if b.span > room - delta {
            return None;
        }
        let len = b.len.min(usize::try_from(left).unwrap_or(usize::MAX));
        // SAFETY: `b.first` and the `b.len` instructions after it lie in
        // the block pool, whose storage is reserved once and never grown
        // past it; its elements are written only while a block is built
        // (`DecodeCache::block`, called above and never inside a handler),
        // so none moves or changes while this slice lives. A handler may
        // drop blocks (a code write, a flush), which only changes headers.
        let block = unsafe { std::slice::from_raw_parts(b.first, len) };
        let mask = if w.code32 { 0xFFFF_FFFF } else { 0xFFFF };
        // EIP and the instruction count live in registers while register
        // forms run (they read neither); they are stored before any other
        // handler runs and when the block is left.
        let icount = self.state.icount;
        let mut eip = eip;
        let mut steps = 0;
        // Data windows are usable while a quiet instruction runs; only a
        // block's last instruction can be one that is not.
        self.data_fast = true;
        let (outcome, quiet, eip, jumped) = 'block: {
            for d in block {
                let next = eip.wrapping_add(d.insn.len() as u32) & mask;
                steps += 1;
                let prepare = |cpu: &mut Cpu| {
                    cpu.state.eip = eip;
                    cpu.state.icount = icount + steps - 1;
                    cpu.ctx = InsnContext {
                        start_eip: eip,
                        next_eip: next,
                        fall_eip: next,
                        addr32: d.addr32,
                        op32: d.op32,
                        pop_cs: d.pop_cs,
                    };
                    if !d.quiet {
                        cpu.data_fast = false;
                    }
                };
                match crate::interp::fast::run_in_block(self, d, bus, prepare) {
                    Ran::Register => {
                        eip = next;
                        continue;
                    }
                    Ran::Retired => {}
                    Ran::Faulted => {
                        self.data_fast = false;
                        let o = self.raise(bus, self.fault);
                        return Some((o, false, 0, steps, true));
                    }
                }
                let after = if d.falls_through {
                    next
                } else {
                    self.ctx.next_eip
                };
                if self.bus_event || !d.quiet {
                    self.bus_event = false;
                    break 'block (StepOutcome::Continue, false, after, after != next);
                }
                eip = after;
                if after != next {
                    break 'block (StepOutcome::Continue, true, eip, true);
                }
            }
            (StepOutcome::Continue, true, eip, false)
        };
        self.data_fast = false;
        self.state.eip = eip;
        self.state.icount = icount + steps;
        Some((outcome, quiet, eip, steps, jumped))
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

    /// Runs until HLT, shutdown, or `max` instructions (or delivered
    /// interrupts); returns the last outcome. Exactly as `max` calls of
    /// [`Cpu::step`] would, only faster: after an instruction that retired
    /// quietly ([`crate::decode::is_quiet`]) with every access on the RAM
    /// fast path, nothing that [`Cpu::step`] checks first (NMI, INTR with
    /// IF, the interrupt shadow, TF, HLT, the debug registers) can have
    /// changed, since the bus only changes its interrupt lines when a device
    /// is accessed or advanced, so the next instruction skips those checks
    /// and fetches through the [`FetchWindow`].
    pub fn run<B: Bus + ?Sized>(&mut self, bus: &mut B, max: u64) -> StepOutcome {
        self.run_until(bus, max, |_| false).0
    }

    /// [`Cpu::run`] that also stops after a step for which `stop(bus)` is
    /// true (asked after every step that was not quiet: a quiet one reaches
    /// no device, so it cannot change the answer). Returns the last outcome
    /// and the number of steps taken.
    pub fn run_until<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        max: u64,
        mut stop: impl FnMut(&mut B) -> bool,
    ) -> (StepOutcome, u64) {
        self.run_steps(bus, max, false, false, |b, _| stop(b))
    }

    /// [`Cpu::run_until`] that also returns after a step that did not go
    /// on to the instruction after it (EIP unchanged or moved by more than
    /// an instruction's length, as a taken jump, a call, a return or an
    /// interrupt does; now and then after another step too), so that a
    /// dispatcher can look for a translated block where control went.
    /// `stop(bus, n)` is asked as in [`Cpu::run_until`], with the steps
    /// taken since it was last asked; the steps of the call not yet
    /// reported are the count returned minus the sum of those.
    pub fn run_to_transfer<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        max: u64,
        stop: impl FnMut(&mut B, u64) -> bool,
    ) -> (StepOutcome, u64) {
        self.run_steps(bus, max, true, false, stop)
    }

    /// [`Cpu::run_to_transfer`], where `checked` says that the caller has
    /// just made the checks [`Cpu::step`] makes before an instruction and
    /// found nothing to do: no NMI to deliver, no interrupt the CPU would
    /// take (IF clear or none pending), and no interrupt shadow, HLT, TF
    /// or debug-register watch. The first instruction then starts as the
    /// instructions of a quiet run do (from the decoded blocks, without
    /// the decode cache's lookup and copy of it) when the soft TLB maps
    /// CS:EIP for execution.
    pub fn run_to_transfer_checked<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        max: u64,
        checked: bool,
        stop: impl FnMut(&mut B, u64) -> bool,
    ) -> (StepOutcome, u64) {
        self.run_steps(bus, max, true, checked, stop)
    }

    /// What [`Cpu::step_inline`] does before its first instruction once
    /// its checks found nothing: the fetch window around CS:EIP and
    /// EFLAGS.RF clear (SDM Vol. 3A, 17.3.1.1). False, changing nothing,
    /// when the CS limit or the soft TLB does not allow the fetch (the
    /// full step then raises or walks as it must).
    #[inline]
    fn enter_quietly(&mut self) -> bool {
        let eip = self.state.eip;
        let Ok(lin) = self.linear(SegReg::Cs, eip, 1, Access::Execute) else {
            return false;
        };
        let user = self.user_access();
        let Some(paddr) = self.translate_cached(lin, Access::Execute, user) else {
            return false;
        };
        let code32 = self.state.code32();
        self.fill_fetch_window(eip, lin, paddr, code32);
        self.state.eflags &= !eflags::RF;
        self.bus_event = false;
        true
    }

    /// Whether the last step went somewhere else than the instruction
    /// after the one begun last (see [`Cpu::run_to_transfer`]): a taken
    /// jump however short, a REP iteration, an interrupt or a fault.
    #[inline(always)]
    fn transferred(&self) -> bool {
        self.state.eip != self.ctx.fall_eip
    }

    /// [`Cpu::run_until`] and [`Cpu::run_to_transfer`].
    #[inline(always)]
    fn run_steps<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        max: u64,
        at_transfer: bool,
        checked: bool,
        mut stop: impl FnMut(&mut B, u64) -> bool,
    ) -> (StepOutcome, u64) {
        let mut left = max;
        let mut hits = 0;
        let mut asked = max;
        let mut ask = |bus: &mut B, left: u64| {
            let n = asked - left;
            asked = left;
            stop(bus, n)
        };
        let mut enter_quietly = checked;
        let outcome = 'run: loop {
            if left == 0 {
                break StepOutcome::Continue;
            }
            let mut fast = if std::mem::take(&mut enter_quietly) && self.enter_quietly() {
                true
            } else {
                let (o, fast) = self.step_inline(bus);
                left -= 1;
                if o != StepOutcome::Continue || ask(bus, left) {
                    break o;
                }
                if at_transfer && self.transferred() {
                    break o;
                }
                fast
            };
            let window = self.fetch;
            let mut eip = self.state.eip;
            self.data_valid = 0;
            while fast && left > 0 {
                let (o, f, next, steps, jumped) = match self.run_block(bus, window, eip, left) {
                    Some(r) => r,
                    None => {
                        let Some((o, f, next)) = self.step_quiet(bus, window, eip) else {
                            break;
                        };
                        (o, f, next, 1, self.transferred())
                    }
                };
                hits += steps;
                left -= steps;
                // A PAUSE (never quiet) ends the quiet run it ran in.
                if !f && std::mem::take(&mut self.paused) {
                    break 'run StepOutcome::Paused;
                }
                // An instruction that was not quiet (its checks before were
                // skippable, not the effects it had) may have reached a
                // device: ask as after any other such step.
                if o != StepOutcome::Continue || (!f && ask(bus, left)) {
                    break 'run o;
                }
                if at_transfer && jumped {
                    break 'run o;
                }
                (fast, eip) = (f, next);
            }
        };
        self.icache.stats.hits += hits;
        (outcome, max - left)
    }

    /// Sets up [`Cpu::ctx`] for a `len`-byte instruction at EIP.
    #[inline]
    fn begin(&mut self, len: u32, addr32: bool, op32: bool, pop_cs: bool, code32: bool) {
        let eip = self.state.eip;
        let mask = if code32 { 0xFFFF_FFFF } else { 0xFFFF };
        let next = eip.wrapping_add(len) & mask;
        self.ctx = InsnContext {
            start_eip: eip,
            next_eip: next,
            fall_eip: next,
            addr32,
            op32,
            pop_cs,
        };
    }

    /// Fetches and decodes the instruction at CS:EIP through the cache,
    /// and sets up [`Cpu::ctx`] for it.
    #[inline]
    pub(crate) fn fetch_decode<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
    ) -> Result<Decoded, Exception> {
        let code32 = self.state.code32();
        let eip = self.state.eip;
        let lin = self.linear(SegReg::Cs, eip, 1, Access::Execute)?;
        let user = self.user_access();
        let paddr = self.translate(bus, lin, Access::Execute, user)?;
        self.fill_fetch_window(eip, lin, paddr, code32);
        if let Some(d) = self.icache.lookup(paddr, code32) {
            let d = *d;
            self.begin(d.insn.len() as u32, d.addr32, d.op32, d.pop_cs, code32);
            return Ok(d);
        }
        let d = self.fetch_decode_slow(bus, code32, lin, paddr)?;
        self.begin(d.insn.len() as u32, d.addr32, d.op32, d.pop_cs, code32);
        // A decode reads code bytes through the bus.
        self.note_bus_event();
        Ok(d)
    }

    /// Records the [`FetchWindow`] around a fetch at `eip` that the segment
    /// check and translation mapped to `lin` and `paddr`: the EIPs in the
    /// same linear page, inside the CS limit (which [`Cpu::linear`] checks
    /// for the first byte of a fetch) and the IP mask.
    #[inline]
    fn fill_fetch_window(&mut self, eip: u32, lin: u32, paddr: u32, code32: bool) {
        let off = lin & 0xFFF;
        let lo = eip - off.min(eip);
        let mut hi = eip.saturating_add(0xFFF - off);
        if self.state.model != CpuModel::I8086 {
            hi = hi.min(self.state.seg[SegReg::Cs as usize].limit);
        }
        if !code32 {
            hi = hi.min(0xFFFF);
        }
        self.fetch = FetchWindow {
            eip_lo: lo,
            eip_hi: hi,
            paddr_lo: paddr.wrapping_sub(eip - lo),
            code32,
        };
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
        let mut n = self.fetch_bytes_from_ram(bus, eip, paddr, &mut bytes);
        let mut fault = None;
        let mask = self.ip_mask();
        // The first byte fetched through another page's translation.
        let mut next_page = None;
        while n < MAX_INSN_LEN {
            let off = eip.wrapping_add(n as u32) & mask;
            let byte = self
                .linear(SegReg::Cs, off, 1, Access::Execute)
                .and_then(|l| {
                    self.translate(bus, l, Access::Execute, user)
                        .map(|p| (l, p))
                });
            match byte {
                Ok((l, p)) => {
                    if p & !0xFFF != paddr & !0xFFF {
                        next_page.get_or_insert((l, p));
                    }
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
                    self.cache_decoded(paddr, code32, d);
                } else if !same_page && no_wrap && self.state.model != CpuModel::I8086 {
                    // Generated code checks a page-crossing instruction's
                    // bytes through both pages' TLB entries (the JIT's
                    // `emit_fetch.rs`): let them point at RAM.
                    self.learn_host(bus, lin, paddr);
                    if let Some((l, p)) = next_page {
                        self.learn_host(bus, l, p);
                    }
                } else if same_page && no_wrap {
                    // The 8086 wraps linear addresses at 1 MiB on the bus, so
                    // only cache where linear and bus address agree.
                    if lin < 0x10_0000 - len {
                        self.cache_decoded(paddr, code32, d);
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

    /// Puts a decoding in the decode cache. The soft TLB grants direct
    /// writes only to pages without cached code (see `Cpu::learn_host`),
    /// so only the first decoding on a page has grants to withdraw;
    /// later ones skip the scan of every TLB entry.
    fn cache_decoded(&mut self, paddr: u32, code32: bool, d: Decoded) {
        let first_on_page = !self.icache.page_has_code(paddr);
        self.icache.insert(paddr, code32, d);
        if first_on_page {
            self.tlb.forget_host_writes(paddr & !0xFFF);
        }
    }

    /// The decode-miss fast path: copies the 15 bytes at `eip` (physical
    /// `paddr`) straight from guest RAM when all of them lie inside the
    /// fetch window [`Cpu::fill_fetch_window`] just recorded for `eip` (one
    /// page, inside the CS limit and the IP mask, so every byte's segment
    /// check and translation gives what the first one's did) and that page
    /// is plain RAM. Returns the bytes read: 15, or 0 when the byte-by-byte
    /// path must decide (a page or limit end within reach, ROM, MMIO).
    #[inline]
    fn fetch_bytes_from_ram<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        eip: u32,
        paddr: u32,
        bytes: &mut [u8; MAX_INSN_LEN],
    ) -> usize {
        let w = self.fetch;
        let in_window = eip >= w.eip_lo && eip <= w.eip_hi;
        if !in_window || w.eip_hi - eip < MAX_INSN_LEN as u32 - 1 {
            return 0;
        }
        let Some(page) = bus.ram_page_offset(paddr) else {
            return 0;
        };
        let start = page + (paddr & 0xFFF) as usize;
        match bus.ram().and_then(|r| r.get(start..start + MAX_INSN_LEN)) {
            Some(src) => {
                bytes.copy_from_slice(src);
                MAX_INSN_LEN
            }
            None => 0,
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
