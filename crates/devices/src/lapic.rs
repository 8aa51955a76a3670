//! The local APIC of one processor, memory-mapped at 0xFEE00000.
//!
//! Sections named below are those of the Intel 64 and IA-32 Architectures
//! Software Developer's Manual, Volume 3A, chapter "Advanced Programmable
//! Interrupt Controller (APIC)": "Local APIC Register Address Map" (the
//! offsets), "Local Vector Table" (the six LVT entries and their writable
//! bits), "APIC Timer" (the divide configuration, one-shot and periodic
//! modes), "Issuing Interprocessor Interrupts" (the ICR), "Error Handling"
//! (the ESR), "Task and Processor Priorities" (TPR, PPR, APR), "Interrupt
//! Acceptance for Fixed Interrupts" (IRR, ISR, TMR, EOI), "Spurious
//! Interrupt" and "Enabling or Disabling the Local APIC" (the SVR).
//!
//! The device sees aligned 32-bit accesses as offsets from its base
//! ([`Lapic::read`], [`Lapic::write`]); offsets that are not a multiple of 16
//! read as 0 and ignore writes. Reserved offsets read as 0 and set the ESR's
//! "illegal register address" bit.
//!
//! Interrupts reach it through [`Lapic::accept_interrupt`] (from the I/O
//! APIC, or the timer and self-IPIs internally); the CPU samples
//! [`Lapic::interrupt_output`] and runs the INTA cycle with
//! [`Lapic::acknowledge`]. A guest EOI of a level-triggered vector is queued
//! for the machine to forward to the I/O APIC ([`Lapic::eoi_broadcast`]).
//! The PIC's INTR reaches the CPU through LINT0 in ExtINT mode
//! ([`Lapic::lint0_extint`]); while the APIC is hardware-disabled (the
//! IA32_APIC_BASE MSR, which is the CPU's) the machine wires INTR directly.
//!
//! Time is explicit: [`Lapic::tick`] advances the timer by a number of bus
//! clock ticks in O(1). The bus clock rate is the machine's choice: nothing
//! in the APIC reports it, and guests calibrate the timer against the PIT.
//! [`Lapic::ticks_until_next_irq`] says how many ticks until the timer next
//! reaches zero.
//!
//! ```
//! use oxide86_devices::lapic::{Lapic, OFF_LVT_TIMER, OFF_SVR, OFF_TIMER_DCR, OFF_TIMER_ICR};
//! use oxide86_devices::Ticks;
//!
//! let mut apic = Lapic::new(0);
//! apic.write(OFF_SVR, 0x1FF); // software enable, spurious vector 0xFF
//! apic.write(OFF_TIMER_DCR, 0x3); // divide by 16
//! apic.write(OFF_LVT_TIMER, 0x2_0030); // periodic, vector 0x30
//! apic.write(OFF_TIMER_ICR, 100);
//! assert_eq!(apic.ticks_until_next_irq(), Some(Ticks(1600)));
//! apic.tick(Ticks(1600));
//! assert!(apic.interrupt_output());
//! assert_eq!(apic.acknowledge(), 0x30);
//! ```
//!
//! Only this processor exists: IPIs reach it when the shorthand is "self" or
//! "all including self", or the destination matches its ID (physical mode,
//! 0xFF broadcasting) or its LDR (flat logical mode); fixed and
//! lowest-priority IPIs are delivered, other delivery modes are dropped. The
//! delivery-status bits always read idle, since delivery is immediate.
//! TSC-deadline timer mode is not offered (CPUID does not report it) and
//! counts nothing.

use crate::Ticks;

/// The physical address of the register page at reset.
pub const LAPIC_BASE: u32 = 0xFEE0_0000;

/// Offset of the local APIC ID register (ID in bits 24-31).
pub const OFF_ID: u32 = 0x20;
/// Offset of the version register (read only).
pub const OFF_VERSION: u32 = 0x30;
/// Offset of the task priority register.
pub const OFF_TPR: u32 = 0x80;
/// Offset of the arbitration priority register (read only, computed).
pub const OFF_APR: u32 = 0x90;
/// Offset of the processor priority register (read only, computed).
pub const OFF_PPR: u32 = 0xA0;
/// Offset of the EOI register (write only).
pub const OFF_EOI: u32 = 0xB0;
/// Offset of the remote read register (read only; always invalid here).
pub const OFF_RRD: u32 = 0xC0;
/// Offset of the logical destination register (ID in bits 24-31).
pub const OFF_LDR: u32 = 0xD0;
/// Offset of the destination format register (model in bits 28-31).
pub const OFF_DFR: u32 = 0xE0;
/// Offset of the spurious interrupt vector register.
pub const OFF_SVR: u32 = 0xF0;
/// Offset of ISR bits 0-31; the other seven follow every 0x10.
pub const OFF_ISR: u32 = 0x100;
/// Offset of TMR bits 0-31; the other seven follow every 0x10.
pub const OFF_TMR: u32 = 0x180;
/// Offset of IRR bits 0-31; the other seven follow every 0x10.
pub const OFF_IRR: u32 = 0x200;
/// Offset of the error status register.
pub const OFF_ESR: u32 = 0x280;
/// Offset of the LVT corrected machine check interrupt register (not offered: reserved).
pub const OFF_LVT_CMCI: u32 = 0x2F0;
/// Offset of the interrupt command register, bits 0-31.
pub const OFF_ICR_LOW: u32 = 0x300;
/// Offset of the interrupt command register, bits 32-63.
pub const OFF_ICR_HIGH: u32 = 0x310;
/// Offset of the LVT timer register.
pub const OFF_LVT_TIMER: u32 = 0x320;
/// Offset of the LVT thermal sensor register.
pub const OFF_LVT_THERMAL: u32 = 0x330;
/// Offset of the LVT performance monitoring counters register.
pub const OFF_LVT_PERF: u32 = 0x340;
/// Offset of the LVT LINT0 register.
pub const OFF_LVT_LINT0: u32 = 0x350;
/// Offset of the LVT LINT1 register.
pub const OFF_LVT_LINT1: u32 = 0x360;
/// Offset of the LVT error register.
pub const OFF_LVT_ERROR: u32 = 0x370;
/// Offset of the timer's initial count register.
pub const OFF_TIMER_ICR: u32 = 0x380;
/// Offset of the timer's current count register (read only).
pub const OFF_TIMER_CCR: u32 = 0x390;
/// Offset of the timer's divide configuration register.
pub const OFF_TIMER_DCR: u32 = 0x3E0;

/// The version register: version 0x14 (integrated APIC), 6 LVT entries (max LVT entry 5).
const VERSION: u32 = 0x0005_0014;
/// Index into [`LapicState::lvt`] of the timer entry.
const LVT_TIMER: usize = 0;
/// Index of the thermal sensor entry.
const LVT_THERMAL: usize = 1;
/// Index of the performance counter entry.
const LVT_PERF: usize = 2;
/// Index of the LINT0 entry.
const LVT_LINT0: usize = 3;
/// Index of the LINT1 entry.
const LVT_LINT1: usize = 4;
/// Index of the error entry.
const LVT_ERROR: usize = 5;
/// Writable bits of each LVT entry, in index order: the timer has vector,
/// mask and mode; thermal and perf add the delivery mode; LINT0/1 add
/// polarity and trigger mode; error has vector and mask. Delivery status
/// (bit 12) and remote IRR (bit 14) are read only.
const LVT_WRITABLE: [u32; 6] = [
    0x0007_00FF,
    0x0001_07FF,
    0x0001_07FF,
    0x0001_A7FF,
    0x0001_A7FF,
    0x0001_00FF,
];
/// LVT bit 16: the entry is masked.
const LVT_MASKED: u32 = 1 << 16;
/// LVT bits 8-10: the delivery mode.
const LVT_DELIVERY_MODE: u32 = 7 << 8;
/// Delivery mode 111: ExtINT (the vector comes from the 8259A).
const DELIVERY_EXTINT: u32 = 7 << 8;
/// LVT timer bits 17-18: the timer mode.
const TIMER_MODE: u32 = 3 << 17;
/// Timer mode 01: periodic.
const TIMER_PERIODIC: u32 = 1 << 17;
/// Timer mode 00: one-shot.
const TIMER_ONE_SHOT: u32 = 0;

/// SVR bit 8: APIC software enable.
const SVR_ENABLE: u32 = 1 << 8;
/// SVR bits that are writable: the vector, the enable and focus processor checking (bit 9).
const SVR_WRITABLE: u32 = 0x3FF;
/// The divide configuration's writable bits (0, 1 and 3).
const DCR_WRITABLE: u32 = 0xB;
/// ICR bits the guest can write: vector, delivery mode, destination mode,
/// level, trigger mode and destination shorthand.
const ICR_WRITABLE: u32 = 0x000C_CFFF;
/// ICR bits 18-19: the destination shorthand.
const ICR_SHORTHAND: u32 = 3 << 18;
/// Shorthand 01: self.
const SHORTHAND_SELF: u32 = 1 << 18;
/// Shorthand 10: all including self.
const SHORTHAND_ALL_INCLUDING_SELF: u32 = 2 << 18;
/// ICR bit 11: logical destination mode.
const ICR_LOGICAL: u32 = 1 << 11;
/// The DFR's flat model (bits 28-31 = 1111); others read as ones too.
const DFR_RESERVED_ONES: u32 = 0x0FFF_FFFF;

/// ESR bit 5: send illegal vector.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: illegal register address.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Everything a snapshot needs: plain data, no handles, no host time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LapicState {
    /// The ID register (APIC ID in bits 24-31).
    pub id: u32,
    /// The task priority register (bits 0-7).
    pub tpr: u32,
    /// The logical destination register.
    pub ldr: u32,
    /// The destination format register (bits 28-31; the rest read as ones).
    pub dfr: u32,
    /// The spurious interrupt vector register.
    pub svr: u32,
    /// In-service register, 256 bits.
    pub isr: [u32; 8],
    /// Trigger mode register: set for vectors accepted level-triggered.
    pub tmr: [u32; 8],
    /// Interrupt request register, 256 bits.
    pub irr: [u32; 8],
    /// The ESR as the guest last latched it by writing the ESR.
    pub esr: u32,
    /// Errors seen since that write.
    pub esr_pending: u32,
    /// ICR bits 0-31.
    pub icr_low: u32,
    /// ICR bits 32-63.
    pub icr_high: u32,
    /// The LVT: timer, thermal, perf, LINT0, LINT1, error.
    pub lvt: [u32; 6],
    /// The timer's initial count.
    pub timer_initial: u32,
    /// The timer's current count.
    pub timer_current: u32,
    /// Bus ticks counted towards the next decrement (below the divisor).
    pub timer_prescale: u32,
    /// The divide configuration register.
    pub timer_divide: u32,
    /// Level-triggered vectors the guest has EOIed, for the I/O APIC.
    pub eoi_broadcasts: Vec<u8>,
}

impl LapicState {
    /// The state after power-on or RESET for the processor with APIC ID `apic_id`.
    pub fn reset(apic_id: u8) -> Self {
        Self {
            id: u32::from(apic_id) << 24,
            tpr: 0,
            ldr: 0,
            dfr: 0xFFFF_FFFF,
            svr: 0xFF,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [LVT_MASKED; 6],
            timer_initial: 0,
            timer_current: 0,
            timer_prescale: 0,
            timer_divide: 0,
            eoi_broadcasts: Vec::new(),
        }
    }
}

impl Default for LapicState {
    fn default() -> Self {
        Self::reset(0)
    }
}

/// One processor's local APIC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lapic {
    state: LapicState,
}

/// The highest set bit of a 256-bit register, as a vector.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8).rev().find_map(|i| {
        let word = bits[i];
        (word != 0).then(|| (i as u32 * 32 + 31 - word.leading_zeros()) as u8)
    })
}

fn bit_set(bits: &mut [u32; 8], vector: u8, value: bool) {
    let (word, bit) = (usize::from(vector >> 5), 1u32 << (vector & 31));
    if value {
        bits[word] |= bit;
    } else {
        bits[word] &= !bit;
    }
}

fn bit_get(bits: &[u32; 8], vector: u8) -> bool {
    bits[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
}

impl Lapic {
    /// The APIC of processor `apic_id` after RESET: software-disabled, every LVT entry masked.
    pub fn new(apic_id: u8) -> Self {
        Self::from_state(LapicState::reset(apic_id))
    }

    /// Builds the APIC from a snapshot, clamping fields a guest could not have produced.
    pub fn from_state(mut state: LapicState) -> Self {
        state.timer_divide &= DCR_WRITABLE;
        state.svr &= SVR_WRITABLE;
        state.dfr |= DFR_RESERVED_ONES;
        for (entry, writable) in state.lvt.iter_mut().zip(LVT_WRITABLE) {
            *entry &= writable;
        }
        let mut apic = Self { state };
        apic.state.timer_prescale %= apic.divisor();
        apic
    }

    /// The snapshot state.
    pub fn state(&self) -> &LapicState {
        &self.state
    }

    /// The APIC ID (bits 24-31 of the ID register).
    pub fn apic_id(&self) -> u8 {
        (self.state.id >> 24) as u8
    }

    /// Whether the SVR's software enable bit is set.
    pub fn software_enabled(&self) -> bool {
        self.state.svr & SVR_ENABLE != 0
    }

    /// Whether LINT0 is unmasked in ExtINT mode, so the 8259A's INTR passes
    /// through to the CPU (and its INTA cycle goes to the 8259A).
    pub fn lint0_extint(&self) -> bool {
        let lint0 = self.state.lvt[LVT_LINT0];
        lint0 & LVT_MASKED == 0 && lint0 & LVT_DELIVERY_MODE == DELIVERY_EXTINT
    }

    /// A fixed interrupt arrives (from the I/O APIC, an IPI or a local
    /// source): it is latched in the IRR, and the TMR records whether it was
    /// level-triggered. Vectors 0-15 are refused with a "receive illegal
    /// vector" error; a software-disabled APIC accepts nothing.
    pub fn accept_interrupt(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        if !self.software_enabled() {
            return;
        }
        bit_set(&mut self.state.irr, vector, true);
        bit_set(&mut self.state.tmr, vector, level_triggered);
    }

    /// The processor priority: the TPR, or the class of the highest in-service vector if higher.
    fn ppr(&self) -> u32 {
        let tpr = self.state.tpr & 0xFF;
        let isrv = highest(&self.state.isr).map_or(0, u32::from);
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The arbitration priority ("Arbitration Priority Register").
    fn apr(&self) -> u32 {
        let tpr = self.state.tpr & 0xFF;
        let isrv = highest(&self.state.isr).map_or(0, u32::from);
        let irrv = highest(&self.state.irr).map_or(0, u32::from);
        if tpr >> 4 >= irrv >> 4 && tpr >> 4 > isrv >> 4 {
            tpr
        } else {
            (tpr & 0xF0).max(isrv & 0xF0).max(irrv & 0xF0)
        }
    }

    /// The highest requested vector whose priority class exceeds the PPR's.
    fn deliverable(&self) -> Option<u8> {
        let vector = highest(&self.state.irr)?;
        (u32::from(vector) >> 4 > self.ppr() >> 4).then_some(vector)
    }

    /// The INTR the APIC presents to the CPU (fixed interrupts only; ExtINT
    /// is the 8259A's own output, see [`Lapic::lint0_extint`]).
    pub fn interrupt_output(&self) -> bool {
        self.deliverable().is_some()
    }

    /// The INTA cycle: moves the highest deliverable vector from the IRR to
    /// the ISR and returns it; with none deliverable (a request that went
    /// away or was masked by a TPR raise), the spurious vector from the SVR,
    /// with no ISR bit set.
    pub fn acknowledge(&mut self) -> u8 {
        match self.deliverable() {
            Some(vector) => {
                bit_set(&mut self.state.irr, vector, false);
                bit_set(&mut self.state.isr, vector, true);
                vector
            }
            None => self.state.svr as u8,
        }
    }

    /// The next level-triggered vector the guest EOIed, oldest first: the
    /// machine hands it to the I/O APIC's `end_of_interrupt`.
    pub fn eoi_broadcast(&mut self) -> Option<u8> {
        if self.state.eoi_broadcasts.is_empty() {
            None
        } else {
            Some(self.state.eoi_broadcasts.remove(0))
        }
    }

    fn eoi(&mut self) {
        let Some(vector) = highest(&self.state.isr) else {
            return;
        };
        bit_set(&mut self.state.isr, vector, false);
        if bit_get(&self.state.tmr, vector) {
            bit_set(&mut self.state.tmr, vector, false);
            // Bounded: a guest that never lets the machine drain cannot grow it.
            if self.state.eoi_broadcasts.len() < 256 {
                self.state.eoi_broadcasts.push(vector);
            }
        }
    }

    /// Records an error and raises the LVT error interrupt if unmasked.
    fn error(&mut self, bit: u32) {
        self.state.esr_pending |= bit;
        let lvt = self.state.lvt[LVT_ERROR];
        let vector = lvt as u8;
        if lvt & LVT_MASKED == 0 && self.software_enabled() && vector >= 16 {
            bit_set(&mut self.state.irr, vector, true);
            bit_set(&mut self.state.tmr, vector, false);
        }
    }

    /// The timer's divisor: 2, 4, ..., 128, or 1 for 1011.
    fn divisor(&self) -> u32 {
        let d = self.state.timer_divide;
        let code = (d & 3) | ((d >> 1) & 4);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    fn timer_mode(&self) -> u32 {
        self.state.lvt[LVT_TIMER] & TIMER_MODE
    }

    /// Whether the timer is counting (a nonzero count in one-shot or periodic mode).
    fn timer_running(&self) -> bool {
        let mode = self.timer_mode();
        self.state.timer_current != 0 && (mode == TIMER_ONE_SHOT || mode == TIMER_PERIODIC)
    }

    /// Advances the timer by `ticks` bus-clock ticks, in O(1) whatever the
    /// number. Reaching zero raises the timer's vector (once, however many
    /// periods went by) unless the LVT entry is masked; periodic mode reloads
    /// the initial count.
    pub fn tick(&mut self, ticks: Ticks) {
        if !self.timer_running() {
            return;
        }
        let div = u128::from(self.divisor());
        let total = u128::from(self.state.timer_prescale) + u128::from(ticks.0);
        let decrements = total / div;
        self.state.timer_prescale = (total % div) as u32;
        let count = u128::from(self.state.timer_current);
        if decrements < count {
            self.state.timer_current = (count - decrements) as u32;
            return;
        }
        let initial = u128::from(self.state.timer_initial);
        self.state.timer_current = if self.timer_mode() == TIMER_PERIODIC && initial != 0 {
            (initial - (decrements - count) % initial) as u32
        } else {
            self.state.timer_prescale = 0;
            0
        };
        let lvt = self.state.lvt[LVT_TIMER];
        if lvt & LVT_MASKED == 0 {
            self.accept_interrupt(lvt as u8, false);
        }
    }

    /// Bus ticks until the timer next reaches zero, or `None` while it is
    /// stopped. Counts even while the LVT entry is masked (no interrupt then).
    pub fn ticks_until_next_irq(&self) -> Option<Ticks> {
        if !self.timer_running() {
            return None;
        }
        let div = u64::from(self.divisor());
        Some(Ticks(
            u64::from(self.state.timer_current) * div - u64::from(self.state.timer_prescale),
        ))
    }

    fn send_ipi(&mut self) {
        let low = self.state.icr_low;
        let vector = low as u8;
        let mode = low & LVT_DELIVERY_MODE;
        let to_self = match low & ICR_SHORTHAND {
            SHORTHAND_SELF | SHORTHAND_ALL_INCLUDING_SELF => true,
            0 => {
                let dest = (self.state.icr_high >> 24) as u8;
                if low & ICR_LOGICAL != 0 {
                    dest & (self.state.ldr >> 24) as u8 != 0
                } else {
                    dest == 0xFF || dest == self.apic_id()
                }
            }
            _ => false, // all excluding self: there is no one else
        };
        // Fixed (000) and lowest priority (001) carry a vector.
        if mode > 1 << 8 {
            return;
        }
        if vector < 16 {
            self.error(ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        if to_self {
            self.accept_interrupt(vector, false);
        }
    }

    fn write_lvt(&mut self, index: usize, value: u32) {
        let mut value = value & LVT_WRITABLE[index];
        if !self.software_enabled() {
            value |= LVT_MASKED; // "cannot be cleared" while software-disabled
        }
        self.state.lvt[index] = value;
    }

    /// A 32-bit read at `offset` from the base.
    pub fn read(&mut self, offset: u32) -> u32 {
        if offset & 0xF != 0 {
            return 0;
        }
        let s = &self.state;
        match offset {
            OFF_ID => s.id,
            OFF_VERSION => VERSION,
            OFF_TPR => s.tpr,
            OFF_APR => self.apr(),
            OFF_PPR => self.ppr(),
            OFF_EOI => 0,
            OFF_RRD => 0,
            OFF_LDR => s.ldr,
            OFF_DFR => s.dfr | DFR_RESERVED_ONES,
            OFF_SVR => s.svr,
            0x100..=0x170 => s.isr[((offset - OFF_ISR) >> 4) as usize],
            0x180..=0x1F0 => s.tmr[((offset - OFF_TMR) >> 4) as usize],
            0x200..=0x270 => s.irr[((offset - OFF_IRR) >> 4) as usize],
            OFF_ESR => s.esr,
            OFF_ICR_LOW => s.icr_low,
            OFF_ICR_HIGH => s.icr_high,
            OFF_LVT_TIMER => s.lvt[LVT_TIMER],
            OFF_LVT_THERMAL => s.lvt[LVT_THERMAL],
            OFF_LVT_PERF => s.lvt[LVT_PERF],
            OFF_LVT_LINT0 => s.lvt[LVT_LINT0],
            OFF_LVT_LINT1 => s.lvt[LVT_LINT1],
            OFF_LVT_ERROR => s.lvt[LVT_ERROR],
            OFF_TIMER_ICR => s.timer_initial,
            OFF_TIMER_CCR => s.timer_current,
            OFF_TIMER_DCR => s.timer_divide,
            _ => {
                self.error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    /// A 32-bit write of `value` at `offset` from the base.
    pub fn write(&mut self, offset: u32, value: u32) {
        if offset & 0xF != 0 {
            return;
        }
        match offset {
            OFF_ID => self.state.id = value & 0xFF00_0000,
            OFF_TPR => self.state.tpr = value & 0xFF,
            OFF_EOI => self.eoi(),
            OFF_LDR => self.state.ldr = value & 0xFF00_0000,
            OFF_DFR => self.state.dfr = value | DFR_RESERVED_ONES,
            OFF_SVR => {
                self.state.svr = value & SVR_WRITABLE;
                if !self.software_enabled() {
                    for entry in &mut self.state.lvt {
                        *entry |= LVT_MASKED;
                    }
                }
            }
            OFF_ESR => self.state.esr = std::mem::take(&mut self.state.esr_pending),
            OFF_ICR_LOW => {
                self.state.icr_low = value & ICR_WRITABLE;
                self.send_ipi();
            }
            OFF_ICR_HIGH => self.state.icr_high = value & 0xFF00_0000,
            OFF_LVT_TIMER => self.write_lvt(LVT_TIMER, value),
            OFF_LVT_THERMAL => self.write_lvt(LVT_THERMAL, value),
            OFF_LVT_PERF => self.write_lvt(LVT_PERF, value),
            OFF_LVT_LINT0 => self.write_lvt(LVT_LINT0, value),
            OFF_LVT_LINT1 => self.write_lvt(LVT_LINT1, value),
            OFF_LVT_ERROR => self.write_lvt(LVT_ERROR, value),
            OFF_TIMER_ICR => {
                self.state.timer_initial = value;
                self.state.timer_current = value;
                self.state.timer_prescale = 0;
            }
            OFF_TIMER_DCR => {
                self.state.timer_divide = value & DCR_WRITABLE;
                self.state.timer_prescale %= self.divisor();
            }
            // Read-only registers ignore writes.
            OFF_VERSION | OFF_APR | OFF_PPR | OFF_RRD | 0x100..=0x270 | OFF_TIMER_CCR => {}
            _ => self.error(ESR_ILLEGAL_REGISTER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's `setup_local_APIC` / `end_local_APIC_setup` shape: enable with
    /// spurious vector 0xFF, mask the LVTs, set LINT0 to ExtINT (virtual wire).
    fn linux_apic() -> Lapic {
        let mut a = Lapic::new(0);
        a.write(OFF_TPR, 0);
        a.write(OFF_DFR, 0xFFFF_FFFF);
        a.write(OFF_LDR, 1 << 24);
        a.write(OFF_SVR, SVR_ENABLE | 0xFF);
        a.write(OFF_LVT_LINT0, DELIVERY_EXTINT);
        a.write(OFF_LVT_LINT1, 4 << 8); // NMI
        a.write(OFF_LVT_ERROR, 0xFE);
        a.write(OFF_ESR, 0);
        a.write(OFF_ESR, 0);
        a
    }

    #[test]
    fn reset_state_reads() {
        let mut a = Lapic::new(3);
        assert_eq!(a.read(OFF_ID), 3 << 24);
        assert_eq!(a.read(OFF_VERSION), 0x0005_0014);
        assert_eq!(a.read(OFF_SVR), 0xFF);
        assert_eq!(a.read(OFF_DFR), 0xFFFF_FFFF);
        for off in (OFF_LVT_TIMER..=OFF_LVT_ERROR).step_by(16) {
            assert_eq!(a.read(off), LVT_MASKED, "{off:#x}");
        }
        assert!(!a.software_enabled());
        assert!(!a.lint0_extint());
        assert_eq!(a.ticks_until_next_irq(), None);
    }

    #[test]
    fn linux_setup_sequence_and_lvt_masks() {
        let mut a = linux_apic();
        assert!(a.software_enabled());
        assert_eq!(a.read(OFF_SVR), 0x1FF);
        assert!(a.lint0_extint());
        assert_eq!(a.read(OFF_LVT_LINT1), 0x400);
        assert_eq!(a.read(OFF_ESR), 0);
        // Masking LINT0 stops the pass-through.
        a.write(OFF_LVT_LINT0, LVT_MASKED | DELIVERY_EXTINT);
        assert!(!a.lint0_extint());
        // Read-only bits stay clear.
        a.write(OFF_LVT_LINT0, 0xFFFF_FFFF);
        assert_eq!(a.read(OFF_LVT_LINT0), 0x0001_A7FF);
        a.write(OFF_LVT_TIMER, 0xFFFF_FFFF);
        assert_eq!(a.read(OFF_LVT_TIMER), 0x0007_00FF);
        // Software-disabling masks everything and keeps it masked.
        a.write(OFF_SVR, 0xFF);
        assert_eq!(a.read(OFF_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
        a.write(OFF_LVT_ERROR, 0xFE);
        assert_eq!(a.read(OFF_LVT_ERROR), LVT_MASKED | 0xFE);
    }

    #[test]
    fn timer_calibration_one_shot_divide_16() {
        let mut a = linux_apic();
        a.write(OFF_TIMER_DCR, 0x3); // divide by 16
        a.write(OFF_LVT_TIMER, LVT_MASKED | 0xEF); // one-shot, masked
        a.write(OFF_TIMER_ICR, 0xFFFF_FFFF);
        a.tick(Ticks(16 * 1000 + 15));
        assert_eq!(a.read(OFF_TIMER_CCR), 0xFFFF_FFFF - 1000);
        a.tick(Ticks(1));
        assert_eq!(a.read(OFF_TIMER_CCR), 0xFFFF_FFFF - 1001);
        assert!(!a.interrupt_output());
        // Runs out, no interrupt (masked), stays at 0.
        a.tick(Ticks(u64::MAX));
        assert_eq!(a.read(OFF_TIMER_CCR), 0);
        assert!(!a.interrupt_output());
        assert_eq!(a.ticks_until_next_irq(), None);
    }

    #[test]
    fn divide_configurations() {
        let mut a = linux_apic();
        for (dcr, div) in [
            (0x0, 2),
            (0x1, 4),
            (0x2, 8),
            (0x3, 16),
            (0x8, 32),
            (0x9, 64),
            (0xA, 128),
            (0xB, 1),
        ] {
            a.write(OFF_TIMER_DCR, dcr);
            a.write(OFF_TIMER_ICR, 10);
            assert_eq!(
                a.ticks_until_next_irq(),
                Some(Ticks(10 * div)),
                "dcr {dcr:#x}"
            );
        }
    }

    #[test]
    fn one_shot_fires_once() {
        let mut a = linux_apic();
        a.write(OFF_TIMER_DCR, 0xB);
        a.write(OFF_LVT_TIMER, 0x40);
        a.write(OFF_TIMER_ICR, 5);
        a.tick(Ticks(4));
        assert!(!a.interrupt_output());
        a.tick(Ticks(1));
        assert!(a.interrupt_output());
        assert_eq!(a.acknowledge(), 0x40);
        a.write(OFF_EOI, 0);
        a.tick(Ticks(1000));
        assert!(!a.interrupt_output());
    }

    #[test]
    fn periodic_timer_delivery_and_eoi() {
        let mut a = linux_apic();
        a.write(OFF_TIMER_DCR, 0x3);
        a.write(OFF_LVT_TIMER, TIMER_PERIODIC | 0xEF);
        a.write(OFF_TIMER_ICR, 1000);
        for _ in 0..5 {
            let t = a.ticks_until_next_irq().unwrap();
            assert_eq!(t, Ticks(16_000));
            a.tick(Ticks(t.0 - 1));
            assert!(!a.interrupt_output());
            a.tick(Ticks(1));
            assert!(a.interrupt_output());
            assert_eq!(a.read(OFF_IRR + 0x70), 1 << (0xEF - 0xE0));
            assert_eq!(a.acknowledge(), 0xEF);
            assert_eq!(a.read(OFF_ISR + 0x70), 1 << (0xEF - 0xE0));
            assert_eq!(a.read(OFF_PPR), 0xE0);
            a.write(OFF_EOI, 0);
            assert_eq!(a.read(OFF_ISR + 0x70), 0);
            assert_eq!(a.eoi_broadcast(), None); // edge: no broadcast
        }
        // A long jump lands on the same phase as small steps would.
        a.tick(Ticks(16_000 * 1_000_000 + 37));
        assert_eq!(a.ticks_until_next_irq(), Some(Ticks(16_000 - 37)));
        assert_eq!(a.read(OFF_TIMER_CCR), 1000 - 37 / 16);
        assert!(a.interrupt_output());
        // Writing 0 stops it.
        a.write(OFF_TIMER_ICR, 0);
        assert_eq!(a.ticks_until_next_irq(), None);
    }

    #[test]
    fn tpr_blocks_lower_class_and_priority_order() {
        let mut a = linux_apic();
        a.accept_interrupt(0x41, false);
        a.accept_interrupt(0x52, false);
        a.write(OFF_TPR, 0x50);
        assert_eq!(a.read(OFF_PPR), 0x50);
        assert!(!a.interrupt_output());
        assert_eq!(a.acknowledge(), 0xFF); // spurious, nothing set in service
        assert_eq!(a.read(OFF_ISR + 0x50), 0);
        a.write(OFF_TPR, 0x4F);
        assert_eq!(a.acknowledge(), 0x52);
        // In service 0x52 blocks 0x41 (same or lower class), even with TPR 0.
        a.write(OFF_TPR, 0);
        assert_eq!(a.read(OFF_PPR), 0x50);
        assert!(!a.interrupt_output());
        // A higher class nests.
        a.accept_interrupt(0x60, false);
        assert_eq!(a.acknowledge(), 0x60);
        a.write(OFF_EOI, 0); // ends 0x60
        a.write(OFF_EOI, 0); // ends 0x52
        assert_eq!(a.acknowledge(), 0x41);
        a.write(OFF_EOI, 0);
        assert_eq!(a.read(OFF_PPR), 0);
        a.write(OFF_EOI, 0); // EOI with nothing in service is harmless
    }

    #[test]
    fn apr_follows_the_sdm_formula() {
        let mut a = linux_apic();
        a.write(OFF_TPR, 0x35);
        assert_eq!(a.read(OFF_APR), 0x35);
        a.accept_interrupt(0x80, false);
        assert_eq!(a.read(OFF_APR), 0x80);
    }

    #[test]
    fn level_eoi_is_broadcast() {
        let mut a = linux_apic();
        a.accept_interrupt(0x31, true);
        assert_eq!(a.read(OFF_TMR + 0x10), 1 << 0x11);
        assert_eq!(a.acknowledge(), 0x31);
        a.write(OFF_EOI, 0);
        assert_eq!(a.eoi_broadcast(), Some(0x31));
        assert_eq!(a.eoi_broadcast(), None);
        assert_eq!(a.read(OFF_TMR + 0x10), 0);
    }

    #[test]
    fn self_ipi() {
        let mut a = linux_apic();
        a.write(OFF_ICR_LOW, SHORTHAND_SELF | 0x90);
        assert_eq!(a.read(OFF_ICR_LOW) & (1 << 12), 0); // idle
        assert_eq!(a.acknowledge(), 0x90);
        a.write(OFF_EOI, 0);
        // Physical destination = own ID.
        a.write(OFF_ICR_HIGH, 0);
        a.write(OFF_ICR_LOW, 0x91);
        assert_eq!(a.acknowledge(), 0x91);
        a.write(OFF_EOI, 0);
        // Another ID: nothing.
        a.write(OFF_ICR_HIGH, 5 << 24);
        a.write(OFF_ICR_LOW, 0x92);
        assert!(!a.interrupt_output());
        // Logical, matching the LDR.
        a.write(OFF_ICR_HIGH, 1 << 24);
        a.write(OFF_ICR_LOW, ICR_LOGICAL | 0x93);
        assert_eq!(a.acknowledge(), 0x93);
        a.write(OFF_EOI, 0);
        // All excluding self, and INIT: nothing here.
        a.write(OFF_ICR_LOW, (3 << 18) | 0x94);
        a.write(OFF_ICR_LOW, SHORTHAND_SELF | (5 << 8));
        assert!(!a.interrupt_output());
    }

    #[test]
    fn esr_latches_on_write() {
        let mut a = linux_apic();
        a.write(OFF_LVT_ERROR, LVT_MASKED | 0xFE);
        a.write(OFF_ICR_LOW, SHORTHAND_SELF | 0x05); // illegal vector
        assert_eq!(a.read(OFF_ESR), 0); // not yet latched
        a.write(OFF_ESR, 0);
        assert_eq!(a.read(OFF_ESR), ESR_SEND_ILLEGAL_VECTOR);
        a.accept_interrupt(3, false);
        a.read(0x3F0); // reserved
        a.write(OFF_ESR, 0);
        assert_eq!(
            a.read(OFF_ESR),
            ESR_RECEIVE_ILLEGAL_VECTOR | ESR_ILLEGAL_REGISTER
        );
        a.write(OFF_ESR, 0);
        assert_eq!(a.read(OFF_ESR), 0);
        // Unmasked LVT error raises its vector.
        a.write(OFF_LVT_ERROR, 0xFE);
        a.accept_interrupt(1, false);
        assert_eq!(a.acknowledge(), 0xFE);
    }

    #[test]
    fn disabled_apic_accepts_nothing() {
        let mut a = Lapic::new(0);
        a.accept_interrupt(0x40, false);
        assert!(!a.interrupt_output());
        assert_eq!(a.acknowledge(), 0xFF);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut a = linux_apic();
        a.write(OFF_TIMER_DCR, 0x3);
        a.write(OFF_LVT_TIMER, TIMER_PERIODIC | 0xEF);
        a.write(OFF_TIMER_ICR, 1000);
        a.tick(Ticks(12_345));
        a.accept_interrupt(0x33, true);
        let mut b = Lapic::from_state(a.state().clone());
        assert_eq!(a, b);
        a.tick(Ticks(99_999));
        b.tick(Ticks(99_999));
        assert_eq!(a, b);
    }

    /// A tiny deterministic generator (xorshift64*), so the fuzz test is repeatable.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn fuzz_never_panics_and_keeps_invariants() {
        for seed in 1..=64u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut a = if seed % 2 == 0 {
                linux_apic()
            } else {
                Lapic::new(seed as u8)
            };
            for _ in 0..3000 {
                let r = rng.next();
                let offset = if r & 0x10 != 0 {
                    (r >> 8) as u32 & 0x3F0
                } else {
                    (r >> 8) as u32 & 0xFFF
                };
                let value = (r >> 32) as u32;
                match r % 8 {
                    0..=2 => a.write(offset, value),
                    3 => {
                        a.read(offset);
                    }
                    4 => a.accept_interrupt((r >> 40) as u8, r & (1 << 50) != 0),
                    5 => {
                        let v = a.acknowledge();
                        assert!(v == a.state().svr as u8 || bit_get(&a.state().isr, v));
                    }
                    6 => a.tick(Ticks(r >> (r % 64))),
                    _ => {
                        a.eoi_broadcast();
                        if let Some(t) = a.ticks_until_next_irq() {
                            assert!(t.0 > 0);
                        }
                    }
                }
                let s = a.state();
                assert!(s.timer_prescale < a.divisor());
                assert!(s.eoi_broadcasts.len() <= 256);
                assert_eq!(a.read(OFF_DFR) | DFR_RESERVED_ONES, a.read(OFF_DFR));
            }
            assert_eq!(Lapic::from_state(a.state().clone()), a);
        }
    }
}
