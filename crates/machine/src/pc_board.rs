//! The PC board: physical memory plus the devices on the I/O bus, as the
//! CPU sees them through [`oxide86_cpu::Bus`]. Port decoding is one `match`
//! on port ranges, so the path from an `IN`/`OUT` to a device is a jump.

use std::cell::Cell;
use std::rc::Rc;

use oxide86_cpu::Bus;
use oxide86_devices::acpi_pm::{AcpiPm, ACPI_PM_BASE, ACPI_PM_LEN, PM_TIMER_HZ};
use oxide86_devices::debug_exit::{DebugExit, DEBUG_EXIT_PORT};
use oxide86_devices::debugcon::{DebugCon, DEBUGCON_PORT};
use oxide86_devices::fw_cfg::{FwCfg, FW_CFG_BASE};

use crate::board_events::BoardEvent;
use oxide86_devices::i8042::{I8042, I8042_AUX_IRQ, I8042_KBD_IRQ};
use oxide86_devices::pci::{Pci, PCI_CONFIG_LEN, PCI_CONFIG_PORT};
use oxide86_devices::pic::{self, Pic};
use oxide86_devices::pit::{Pit, Port61, PIT_HZ, PIT_PORT, PORT61};
use oxide86_devices::port92::{Port92, PORT92};
use oxide86_devices::post::{PostPort, POST_PORT};
use oxide86_devices::rtc::{DateTime, Rtc, RTC_BASE, RTC_HZ, RTC_IRQ};
use oxide86_devices::uart::{SerialOutput, Uart, COM_PORTS, UART_CLOCK_HZ};
use oxide86_devices::{IrqLine, PortIo, Ticks};

use crate::apic::Apics;
use crate::clock::{Clock, ClockMode, TickConverter};
use crate::memory_map::PhysMemory;

/// The levels of the sixteen ISA interrupt lines as the devices drive them,
/// and the rising edges seen since the board last looked (a timer may pulse
/// a line low and high again within one tick batch); the board forwards
/// both to the PIC after each device access or tick. Several devices may
/// share a line (COM1 and COM3 on IRQ4): the line is high while any of them
/// drives it high.
#[derive(Clone, Debug, Default)]
pub struct IrqLevels {
    levels: Rc<Cell<u16>>,
    rising: Rc<Cell<u16>>,
    /// One bit per device output, set while that output is high.
    sources: Rc<Cell<u32>>,
    /// For each ISA line, the device outputs wired to it.
    line_sources: Rc<Cell<[u32; 16]>>,
    /// Device outputs handed out so far.
    allocated: Rc<Cell<u32>>,
}

/// One device's output onto an ISA interrupt line.
#[derive(Clone, Debug)]
pub struct IsaIrq {
    levels: IrqLevels,
    line: u8,
    source: u32,
}

impl IrqLevels {
    /// A new device output wired to ISA IRQ `line` (0-15). At most 32
    /// outputs exist; further ones share the last output's bit.
    pub fn line(&self, line: u8) -> IsaIrq {
        let line = line & 15;
        let n = self.allocated.get().min(31);
        self.allocated.set(n + 1);
        let source = 1u32 << n;
        let mut map = self.line_sources.get();
        map[usize::from(line)] |= source;
        self.line_sources.set(map);
        IsaIrq {
            levels: self.clone(),
            line,
            source,
        }
    }
}

impl IrqLine for IsaIrq {
    fn set_level(&mut self, high: bool) {
        let l = &self.levels;
        let sources = if high {
            l.sources.get() | self.source
        } else {
            l.sources.get() & !self.source
        };
        l.sources.set(sources);
        let bit = 1u16 << self.line;
        let line_high = sources & l.line_sources.get()[usize::from(self.line)] != 0;
        let v = l.levels.get();
        if line_high && v & bit == 0 {
            l.rising.set(l.rising.get() | bit);
        }
        l.levels.set(if line_high { v | bit } else { v & !bit });
    }
}

/// Which UART (0-3) and register a port addresses, if any.
fn com_port(port: u16) -> Option<(usize, u16)> {
    COM_PORTS
        .iter()
        .position(|(base, _)| (*base..*base + 8).contains(&port))
        .map(|n| (n, port - COM_PORTS[n].0))
}

/// Where the bytes of the debug console go.
pub trait ConsoleSink: std::fmt::Debug {
    /// Called with each byte the guest writes to port 0xE9.
    fn byte(&mut self, b: u8);
}

/// Where COM1's transmitted bytes go (a terminal, a file, or nowhere).
#[derive(Default)]
pub struct HostSerial(pub Option<Box<dyn std::io::Write + Send>>);

impl std::fmt::Debug for HostSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "HostSerial(connected)"
        } else {
            "HostSerial(none)"
        })
    }
}

impl HostSerial {
    /// Pushes out bytes held in the host writer's buffer (a prompt with
    /// no newline yet); the machine does this whenever the guest idles.
    pub fn flush(&mut self) {
        if let Some(w) = self.0.as_mut() {
            let _ = w.flush();
        }
    }
}

impl SerialOutput for HostSerial {
    fn write_byte(&mut self, byte: u8) {
        if let Some(w) = self.0.as_mut() {
            // A host write error loses the byte, as a disconnected line would.
            let _ = w.write_all(&[byte]);
            if byte == b'\n' {
                let _ = w.flush();
            }
        }
    }
}

/// Ports below this are on the ISA bus (its 10-bit I/O decode range): the
/// legacy devices (PIT, PICs, keyboard controller, RTC, UARTs, port 0x80)
/// and any unclaimed legacy port.
pub const ISA_PORT_END: u16 = 0x400;

/// Virtual time one IN or OUT on the ISA bus takes. An 8-bit ISA I/O
/// cycle at 8.33 MHz with its wait states is about a microsecond on PC
/// hardware (the reason port 0x80 writes serve as I/O delays); PCI ports
/// (configuration space, the PIIX4 power-management block, fw_cfg) cost
/// nothing beyond the instruction.
pub const ISA_IO_NS: u64 = 1_000;

/// Memory and devices.
#[derive(Debug)]
pub struct PcBoard {
    /// RAM, ROM and the A20 gate.
    pub memory: PhysMemory,
    /// Port 0xE9.
    pub debugcon: DebugCon,
    /// Where port-0xE9 bytes go besides `debugcon.output` (if anywhere).
    pub debugcon_sink: Option<Box<dyn ConsoleSink>>,
    /// Port 0xF4.
    pub debug_exit: DebugExit,
    /// Port 0x92 (fast A20 and reset).
    pub port92: Port92,
    /// The PIIX4 power-management block (poweroff).
    pub acpi_pm: AcpiPm,
    /// The 8259A pair (and ELCR).
    pub pic: Pic,
    /// The 8254 timer (IRQ0) with port 0x61.
    pub pit: Pit<IsaIrq>,
    /// The POST code port 0x80.
    pub post: PostPort,
    /// COM1-COM4 (0x3F8/IRQ4, 0x2F8/IRQ3, 0x3E8/IRQ4, 0x2E8/IRQ3).
    pub com: [Uart<IsaIrq, HostSerial>; 4],
    /// The MC146818 RTC/CMOS (0x70/0x71, IRQ8).
    pub rtc: Rtc<IsaIrq>,
    /// The i8042 keyboard controller (0x60/0x64, IRQ1 and IRQ12).
    pub i8042: I8042<IsaIrq, IsaIrq>,
    /// PCI configuration mechanism #1 (0xCF8-0xCFF): 440FX, PIIX3, PIIX4 PM.
    pub pci: Pci,
    /// QEMU's firmware configuration interface (0x510/0x511).
    pub fw_cfg: FwCfg,
    /// The local APIC and the I/O APIC.
    pub apics: Apics,
    /// Machine time.
    pub clock: Clock,
    /// Instructions retired before the CPU's last reset (its count
    /// restarts at reset; machine time does not).
    pub icount_base: u64,
    /// Port accesses and interrupt acknowledges, for tracers and debuggers.
    pub events: crate::board_events::BoardEvents,
    irq_levels: IrqLevels,
    uart_clock: TickConverter,
    rtc_clock: TickConverter,
    pm_timer_clock: TickConverter,
    /// The levels last forwarded to the PIC.
    irq_seen: u16,
    /// An NMI for the CPU (from the I/O APIC).
    nmi_pending: bool,
    pit_clock: TickConverter,
    /// An ISA access let virtual time pass since the machine last looked
    /// at device events (see [`PcBoard::slice_must_end`]).
    isa_waited: bool,
}

impl PcBoard {
    /// A board around `memory` with every device in its power-on state.
    pub fn new(memory: PhysMemory, rtc_start: DateTime) -> Self {
        let irq_levels = IrqLevels::default();
        let ram = memory.ram().len() as u64;
        let mut rtc = Rtc::new(rtc_start, irq_levels.line(RTC_IRQ));
        rtc.set_memory_size(
            ram.min(crate::memory_map::PCI_HOLE_START.into()),
            ram.saturating_sub(crate::memory_map::PCI_HOLE_START.into()),
        );
        rtc.update_checksum();
        let mut i8042 = I8042::new(
            irq_levels.line(I8042_KBD_IRQ),
            irq_levels.line(I8042_AUX_IRQ),
        );
        i8042.set_a20(true);
        let mut fw_cfg = FwCfg::new();
        fw_cfg.set_ram_size(ram);
        // A fresh device has room for the e820 file: this cannot fail.
        let _ = fw_cfg.set_e820(&crate::boot::linux::e820_map(ram));
        Self {
            memory,
            debugcon: DebugCon::default(),
            debugcon_sink: None,
            debug_exit: DebugExit::default(),
            port92: Port92::default(),
            acpi_pm: AcpiPm::default(),
            pic: Pic::new(),
            pit: Pit::new(irq_levels.line(0)),
            post: PostPort::default(),
            com: COM_PORTS.map(|(_, irq)| Uart::new(irq_levels.line(irq), HostSerial::default())),
            rtc,
            i8042,
            pci: Pci::new(),
            fw_cfg,
            apics: Apics::new(),
            clock: Clock::new(ClockMode::Virtual),
            icount_base: 0,
            events: Default::default(),
            irq_levels,
            uart_clock: TickConverter::new(UART_CLOCK_HZ),
            rtc_clock: TickConverter::new(RTC_HZ),
            pm_timer_clock: TickConverter::new(PM_TIMER_HZ),
            irq_seen: 0,
            nmi_pending: false,
            pit_clock: TickConverter::new(PIT_HZ),
            isa_waited: false,
        }
    }

    /// Whether the guest asked to leave (debug exit, ACPI power-off, reset).
    pub fn exit_requested(&self) -> bool {
        self.debug_exit.requested.is_some() || self.acpi_pm.poweroff_requested()
    }

    /// Whether the CPU's run must stop after this instruction: the guest
    /// asked to leave, or an ISA access let time pass, so a device event
    /// may now be due before the end of the slice the run was given.
    pub fn slice_must_end(&self) -> bool {
        self.isa_waited || self.exit_requested()
    }

    /// Starts a slice: device events have just been looked at.
    pub fn begin_slice(&mut self) {
        self.isa_waited = false;
    }

    /// An IN or OUT at `port` occupies the bus: under the virtual clock
    /// an ISA port takes [`ISA_IO_NS`] (a guest polling a timer through
    /// port 0x61 or delaying with port 0x80 waits as on hardware, in a
    /// thousandth of the instructions it would need at one nanosecond
    /// each). The realtime clock has its own time.
    fn bus_cycle(&mut self, port: u16) {
        if port < ISA_PORT_END && self.clock.mode() == ClockMode::Virtual {
            self.clock.skip(ISA_IO_NS);
            self.isa_waited = true;
        }
    }

    /// Forwards interrupt-line changes to the PIC: level changes, and rising
    /// edges that happened between two looks (as a low-high pulse).
    fn sync_irqs(&mut self) {
        let levels = self.irq_levels.levels.get();
        let rising = self.irq_levels.rising.replace(0);
        let changed = (levels ^ self.irq_seen) | rising;
        if changed != 0 {
            for line in 0..16u8 {
                let bit = 1 << line;
                if changed & bit == 0 {
                    continue;
                }
                let high = levels & bit != 0;
                if rising & bit != 0 {
                    // The edge: low then high, then the final level.
                    self.pic.set_irq(line, false);
                    self.pic.set_irq(line, true);
                    self.apics.isa_line(line, false);
                    self.apics.isa_line(line, true);
                }
                self.pic.set_irq(line, high);
                self.apics.isa_line(line, high);
            }
            self.irq_seen = levels;
        }
    }

    /// Brings every timed device up to `now_ns` of machine time.
    pub fn advance_to(&mut self, now_ns: u64) {
        let ticks = self.pit_clock.advance_to(now_ns);
        if ticks > 0 {
            self.pit.tick(Ticks(ticks));
        }
        let ticks = self.uart_clock.advance_to(now_ns);
        if ticks > 0 {
            for c in &mut self.com {
                c.tick(Ticks(ticks));
            }
        }
        let ticks = self.rtc_clock.advance_to(now_ns);
        if ticks > 0 {
            self.rtc.tick(Ticks(ticks));
        }
        let ticks = self.pm_timer_clock.advance_to(now_ns);
        self.acpi_pm.tick(Ticks(ticks));
        self.apics.advance_to(now_ns);
        self.sync_irqs();
    }

    /// Nanoseconds from the last `advance_to` until the next device event
    /// that may raise an interrupt, if any is scheduled.
    pub fn ns_until_next_event(&self) -> Option<u64> {
        [
            self.pit
                .ticks_until_next_irq()
                .map(|t| self.pit_clock.ns_for_ticks(t.0)),
            self.com
                .iter()
                .filter_map(|c| c.ticks_until_next_irq())
                .min()
                .map(|t| self.uart_clock.ns_for_ticks(t.0)),
            self.rtc
                .ticks_until_next_irq()
                .map(|t| self.rtc_clock.ns_for_ticks(t.0)),
            self.apics.ns_until_next_event(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Hands bytes typed on the host to COM1 (as many as its FIFO takes);
    /// returns how many were taken.
    pub fn serial_input(&mut self, bytes: &[u8]) -> usize {
        let n = self.com[0].enqueue_input(bytes);
        self.sync_irqs();
        n
    }

    /// The A20 line: the keyboard controller's output port or port 0x92.
    fn update_a20(&mut self) {
        let on = self.i8042.a20() || self.port92.a20();
        self.memory.set_a20(on);
    }

    /// Takes the pending reset requests (port 0x92, the keyboard
    /// controller's output port, the PIIX reset control register 0xCF9)
    /// and says where the first came from.
    pub fn take_reset_request(&mut self) -> Option<&'static str> {
        let a = self.port92.take_reset_request();
        let b = self.i8042.take_reset_request();
        let c = self.pci.take_reset_request().is_some();
        if a {
            Some("reset through port 0x92")
        } else if b {
            Some("reset through the keyboard controller")
        } else if c {
            Some("reset through port 0xCF9")
        } else {
            None
        }
    }

    fn port_read(&mut self, port: u16) -> u8 {
        match port {
            DEBUGCON_PORT => self.debugcon.read(0),
            DEBUG_EXIT_PORT => self.debug_exit.read(0),
            PORT92 => self.port92.read(0),
            p if (PIT_PORT..PIT_PORT + 4).contains(&p) => self.pit.read(p - PIT_PORT),
            PORT61 => Port61(&mut self.pit).read(0),
            0x60 | 0x64 => self.i8042.read(port - 0x60),
            p if (FW_CFG_BASE..FW_CFG_BASE + 2).contains(&p) => self.fw_cfg.read(p - FW_CFG_BASE),
            p if (RTC_BASE..RTC_BASE + 2).contains(&p) => self.rtc.read(p - RTC_BASE),
            p if com_port(p).is_some() => {
                let (n, off) = com_port(p).unwrap_or_default();
                self.com[n].read(off)
            }
            POST_PORT => self.post.read(0),
            p if pic::port_offset(p).is_some() => self.pic.read(pic::port_offset(p).unwrap_or(0)),
            p if (ACPI_PM_BASE..ACPI_PM_BASE + ACPI_PM_LEN).contains(&p) => {
                self.acpi_pm.read(p - ACPI_PM_BASE)
            }
            _ => 0xFF,
        }
    }

    fn port_write(&mut self, port: u16, value: u8) {
        match port {
            DEBUGCON_PORT => {
                if let Some(s) = self.debugcon_sink.as_mut() {
                    s.byte(value);
                } else {
                    self.debugcon.write(0, value);
                }
            }
            DEBUG_EXIT_PORT => self.debug_exit.write(0, value),
            PORT92 => {
                self.port92.write(0, value);
                self.update_a20();
            }
            p if (PIT_PORT..PIT_PORT + 4).contains(&p) => self.pit.write(p - PIT_PORT, value),
            PORT61 => Port61(&mut self.pit).write(0, value),
            p if (FW_CFG_BASE..FW_CFG_BASE + 2).contains(&p) => {
                self.fw_cfg.write(p - FW_CFG_BASE, value)
            }
            0x60 | 0x64 => {
                self.i8042.write(port - 0x60, value);
                self.update_a20();
            }
            p if (RTC_BASE..RTC_BASE + 2).contains(&p) => self.rtc.write(p - RTC_BASE, value),
            p if com_port(p).is_some() => {
                let (n, off) = com_port(p).unwrap_or_default();
                self.com[n].write(off, value)
            }
            POST_PORT => self.post.write(0, value),
            p if pic::port_offset(p).is_some() => {
                self.pic.write(pic::port_offset(p).unwrap_or(0), value)
            }
            p if (ACPI_PM_BASE..ACPI_PM_BASE + ACPI_PM_LEN).contains(&p) => {
                self.acpi_pm.write(p - ACPI_PM_BASE, value)
            }
            _ => {}
        }
    }
}

/// Where the APIC register pages can be: everything below is memory.
const APIC_MMIO_START: u32 = 0xFEC0_0000;

impl PcBoard {
    /// A read of `size` bytes from an APIC register page: the registers
    /// are dwords, so narrower reads take their part of the dword.
    fn apic_read(&mut self, addr: u32, size: u32) -> u32 {
        let v = self.apics.mmio_read(addr & !3) >> (8 * (addr & 3));
        let v = if size == 4 {
            v
        } else {
            v & ((1 << (8 * size)) - 1)
        };
        self.sync_apic_nmi();
        v
    }

    /// A write to an APIC register page; narrower writes merge into the
    /// dword they fall in.
    fn apic_write(&mut self, addr: u32, size: u32, value: u32) {
        let aligned = addr & !3;
        let value = if size == 4 && addr & 3 == 0 {
            value
        } else {
            let shift = 8 * (addr & 3);
            let mask = (((1u64 << (8 * size)) - 1) as u32) << shift;
            (self.apics.mmio_read(aligned) & !mask) | ((value << shift) & mask)
        };
        self.apics.mmio_write(aligned, value);
        self.sync_apic_nmi();
    }

    /// The I/O APIC's NMI messages become the CPU's NMI.
    fn sync_apic_nmi(&mut self) {
        if self.apics.take_nmi() {
            self.nmi_pending = true;
        }
    }

    #[inline]
    fn is_apic(&self, addr: u32) -> bool {
        addr >= APIC_MMIO_START && self.apics.claims(addr)
    }
}

impl Bus for PcBoard {
    #[inline]
    fn ram(&mut self) -> Option<&mut [u8]> {
        Some(self.memory.ram_mut().as_mut_slice())
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        self.memory.ram_page_offset(paddr)
    }
    fn memory_map_generation(&self) -> u64 {
        self.memory.generation()
    }
    #[inline]
    fn read_u8(&mut self, addr: u32) -> u8 {
        if self.is_apic(addr) {
            return self.apic_read(addr, 1) as u8;
        }
        self.memory.read_u8(addr)
    }
    #[inline]
    fn write_u8(&mut self, addr: u32, value: u8) {
        if self.is_apic(addr) {
            return self.apic_write(addr, 1, value.into());
        }
        self.memory.write_u8(addr, value)
    }
    fn read_u16(&mut self, addr: u32) -> u16 {
        if self.is_apic(addr) && addr & 3 != 3 {
            return self.apic_read(addr, 2) as u16;
        }
        u16::from_le_bytes([self.read_u8(addr), self.read_u8(addr.wrapping_add(1))])
    }
    fn write_u16(&mut self, addr: u32, value: u16) {
        if self.is_apic(addr) && addr & 3 != 3 {
            return self.apic_write(addr, 2, value.into());
        }
        let [a, b] = value.to_le_bytes();
        self.write_u8(addr, a);
        self.write_u8(addr.wrapping_add(1), b);
    }
    #[inline]
    fn read_u32(&mut self, addr: u32) -> u32 {
        if self.is_apic(addr) && addr & 3 == 0 {
            return self.apic_read(addr, 4);
        }
        if addr >= APIC_MMIO_START {
            return u32::from(self.read_u16(addr))
                | (u32::from(self.read_u16(addr.wrapping_add(2))) << 16);
        }
        self.memory.read_u32(addr)
    }
    fn write_u32(&mut self, addr: u32, value: u32) {
        if self.is_apic(addr) && addr & 3 == 0 {
            return self.apic_write(addr, 4, value);
        }
        self.write_u16(addr, value as u16);
        self.write_u16(addr.wrapping_add(2), (value >> 16) as u16);
    }
    fn sync_time(&mut self, icount: u64) {
        let now = self.clock.now_ns(self.icount_base + icount);
        self.advance_to(now);
    }
    fn apic_base_changed(&mut self, value: u64) {
        self.apics.set_base_msr(value);
    }
    fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_pending)
    }
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let value = self.io_read_inner(port, size);
        self.bus_cycle(port);
        if self.events.enabled {
            self.events
                .record(BoardEvent::PortRead { port, size, value });
        }
        value
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if self.events.enabled {
            self.events
                .record(BoardEvent::PortWrite { port, size, value });
        }
        self.io_write_inner(port, size, value);
        self.bus_cycle(port);
    }
    fn interrupt_pending(&mut self) -> bool {
        self.apics.interrupt_output() || (self.apics.passes_pic() && self.pic.interrupt_output())
    }
    fn interrupt_ack(&mut self) -> Option<u8> {
        let vector = self.interrupt_ack_inner();
        if let Some(vector) = vector {
            self.events.last_ack = Some(vector);
            self.events.record(BoardEvent::InterruptAck { vector });
        }
        vector
    }
}

impl PcBoard {
    /// The INTA cycle: ExtINT from the 8259A is not subject to the local
    /// APIC's priorities, so it goes first.
    fn interrupt_ack_inner(&mut self) -> Option<u8> {
        if self.apics.passes_pic() && self.pic.interrupt_output() {
            return self.pic.acknowledge();
        }
        if self.apics.interrupt_output() {
            return Some(self.apics.lapic.acknowledge());
        }
        if self.apics.passes_pic() {
            self.pic.acknowledge()
        } else {
            None
        }
    }

    /// `IN` as the devices answer it.
    fn io_read_inner(&mut self, port: u16, size: u8) -> u32 {
        // PCI configuration space decodes the access size itself.
        if (PCI_CONFIG_PORT..PCI_CONFIG_PORT + PCI_CONFIG_LEN).contains(&port) {
            return self.pci.io_read(port - PCI_CONFIG_PORT, size);
        }
        let mut v = 0;
        for i in 0..u16::from(size) {
            v |= u32::from(self.port_read(port.wrapping_add(i))) << (8 * i);
        }
        // Reads acknowledge interrupts too (UART IIR/RBR, RTC register C...).
        self.sync_irqs();
        v
    }
    /// `OUT` as the devices take it.
    fn io_write_inner(&mut self, port: u16, size: u8, value: u32) {
        if (PCI_CONFIG_PORT..PCI_CONFIG_PORT + PCI_CONFIG_LEN).contains(&port) {
            return self.pci_config_write(port - PCI_CONFIG_PORT, size, value);
        }
        if port == FW_CFG_BASE && size == 2 {
            // A 16-bit selector write: both bytes go to the selector port.
            self.fw_cfg.write(0, value as u8);
            self.fw_cfg.write(0, (value >> 8) as u8);
            return;
        }
        for i in 0..u16::from(size) {
            self.port_write(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
        self.sync_irqs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::GuestRam;

    fn board() -> PcBoard {
        PcBoard::new(
            PhysMemory::new(GuestRam::new(16 << 20).unwrap(), Vec::new()),
            DateTime::from_unix(0),
        )
    }

    #[test]
    fn pci_mechanism_1_finds_the_host_bridge() {
        let mut b = board();
        b.io_write(0xCF8, 4, 0x8000_0000);
        assert_eq!(b.io_read(0xCF8, 4), 0x8000_0000);
        assert_eq!(b.io_read(0xCFC, 4), 0x1237_8086, "440FX at 00.0");
        b.io_write(0xCF8, 4, 0x8000_0800); // device 1
        assert_eq!(b.io_read(0xCFC, 2), 0x8086);
    }

    #[test]
    fn fw_cfg_signature_and_ram_size() {
        let mut b = board();
        b.io_write(0x510, 2, 0x0000);
        let sig: Vec<u8> = (0..4).map(|_| b.io_read(0x511, 1) as u8).collect();
        assert_eq!(&sig, b"QEMU");
        b.io_write(0x510, 2, 0x0003);
        let size = (0..8).fold(0u64, |v, i| {
            v | (u64::from(b.io_read(0x511, 1) as u8) << (8 * i))
        });
        assert_eq!(size, 16 << 20);
    }

    #[test]
    fn four_uarts_and_a_shared_irq_line() {
        let mut b = board();
        for (base, _) in COM_PORTS {
            b.io_write(base + 7, 1, 0x5A); // scratch register
            assert_eq!(b.io_read(base + 7, 1), 0x5A, "UART at {base:#x}");
        }
        // COM1 and COM3 share IRQ4: the line stays up while either drives it.
        let levels = IrqLevels::default();
        let mut com1 = levels.line(4);
        let mut com3 = levels.line(4);
        com1.set_level(true);
        com3.set_level(true);
        com1.set_level(false);
        assert_ne!(levels.levels.get() & (1 << 4), 0);
        com3.set_level(false);
        assert_eq!(levels.levels.get() & (1 << 4), 0);
    }

    #[test]
    fn cmos_reports_extended_memory() {
        let mut b = board();
        b.io_write(0x70, 1, 0x30);
        let lo = b.io_read(0x71, 1);
        b.io_write(0x70, 1, 0x31);
        let hi = b.io_read(0x71, 1);
        assert_eq!((hi << 8) | lo, (16 << 10) - 1024, "KiB above 1 MiB");
    }

    /// Linux's quick_pit_calibrate writes a count to PIT channel 2 and
    /// polls its MSB: each port read must see the counter as of that
    /// instruction, not as of the last time the run loop advanced devices.
    #[test]
    fn port_reads_see_the_pit_at_the_current_instruction() {
        let mut b = board();
        b.io_write(0x61, 1, 1); // gate channel 2 on, speaker off
        b.io_write(0x43, 1, 0xB0); // channel 2, lobyte/hibyte, mode 0
        b.io_write(0x42, 1, 0xFF);
        b.io_write(0x42, 1, 0xFF);
        let read = |b: &mut PcBoard, icount: u64| {
            b.sync_time(icount);
            let lo = b.io_read(0x42, 1);
            let hi = b.io_read(0x42, 1);
            (hi << 8) | lo
        };
        let first = read(&mut b, 10);
        // 1,000 instructions are 1 us of virtual time: about 1.19 PIT ticks.
        let later = read(&mut b, 1_000_010 / 1000 * 1000);
        assert!(first > 0xFF00, "loaded: {first:#x}");
        let elapsed = first - later;
        assert!(
            (1190..=1196).contains(&elapsed),
            "1 ms is 1193 ticks, got {elapsed}"
        );
    }
}
