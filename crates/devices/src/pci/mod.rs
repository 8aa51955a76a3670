//! PCI configuration mechanism #1 and bus 0 of a 440FX/PIIX3 PC (PCI Local
//! Bus Specification 3.0, 3.2.2.3.2 "Software Generation of Configuration
//! Transactions").
//!
//! CONFIG_ADDRESS at 0xCF8 is a dword register: bit 31 enables
//! configuration cycles, bits 23:16 pick the bus, 15:11 the device, 10:8
//! the function and 7:2 the dword register; bits 30:24 and 1:0 are
//! reserved and read as zero. CONFIG_DATA at 0xCFC-0xCFF carries the
//! selected dword, each port one byte lane, so a byte access at 0xCFE
//! reaches register `reg + 2`. A read of a function nobody implements ends
//! in a master abort and returns all ones; such a write is dropped.
//!
//! Bus 0 holds the [`chipset`] functions: the 440FX host bridge at 00.0,
//! the PIIX3 ISA bridge at 01.0 and the PIIX4 power-management function at
//! 01.3. Later devices plug in with [`Pci::add_function`].
//!
//! Port offsets from [`PCI_CONFIG_PORT`]: 0-3 CONFIG_ADDRESS, 4-7
//! CONFIG_DATA. The specification decodes CONFIG_ADDRESS only for dword
//! accesses, which [`Pci::io_read`] / [`Pci::io_write`] honour when the
//! machine passes the access size. The byte-wide [`PortIo`] view, for a
//! machine that splits wide accesses, treats offsets 0-3 as the register's
//! byte lanes instead, so a split `outl` still works. The sized view also
//! decodes a byte at offset 1 as the PIIX3 reset control register (port
//! 0xCF9), which the byte view cannot tell from CONFIG_ADDRESS's lane 1.
//!
//! ```
//! use oxide86_devices::pci::Pci;
//!
//! let mut pci = Pci::new();
//! pci.io_write(0, 4, 0x8000_0000); // bus 0, device 0, function 0, register 0
//! assert_eq!(pci.io_read(4, 4), 0x1237_8086); // the 440FX
//! pci.io_write(0, 4, 0x8000_1000); // device 2: nobody there
//! assert_eq!(pci.io_read(6, 2), 0xFFFF);
//! ```

pub mod chipset;
pub mod config;

use crate::PortIo;
use chipset::I440fx;
pub use config::{PciConfigSpace, PciFunction};

/// The PC port of CONFIG_ADDRESS; the device decodes 8 ports from here.
pub const PCI_CONFIG_PORT: u16 = 0xCF8;
/// Ports the device decodes from [`PCI_CONFIG_PORT`].
pub const PCI_CONFIG_LEN: u16 = 8;

/// Offset of CONFIG_ADDRESS (dword; byte lanes at 0-3 in the byte view).
pub const OFF_CONFIG_ADDRESS: u16 = 0;
/// Offset of CONFIG_DATA's first byte lane.
pub const OFF_CONFIG_DATA: u16 = 4;
/// Offset of the PIIX3 reset control register (port 0xCF9; 82371SB
/// datasheet, "RC - Reset Control Register"), reached by byte accesses
/// through [`Pci::io_read`] / [`Pci::io_write`] only.
pub const OFF_RESET_CONTROL: u16 = 1;

const RC_SYSTEM_RESET: u8 = 1 << 1; // SRST: 1 = hard reset (whole system), 0 = soft (CPU INIT)
const RC_RESET_CPU: u8 = 1 << 2; // RCPU: a 0-to-1 transition starts the reset
const RC_WRITABLE: u8 = RC_SYSTEM_RESET | RC_RESET_CPU; // bits 7:3 and 0 reserved

const ADDR_ENABLE: u32 = 1 << 31; // configuration cycles on CONFIG_DATA
const ADDR_WRITABLE: u32 = 0x80FF_FFFC; // reserved bits 30:24 and 1:0 read 0
const ADDR_BUS_SHIFT: u32 = 16; // bits 23:16
const ADDR_DEVFN_SHIFT: u32 = 8; // device in 15:11, function in 10:8
const ADDR_REG_MASK: u32 = 0xFC; // dword-aligned register
const MAX_DEVICE: u8 = 31; // devices 0-31 on a bus
const MAX_FUNCTION: u8 = 7; // functions 0-7 of a device

/// Device/function of the 440FX host bridge (00.0).
pub const DEVFN_HOST_BRIDGE: u8 = devfn(0, 0);
/// Device/function of the PIIX3 ISA bridge (01.0).
pub const DEVFN_ISA_BRIDGE: u8 = devfn(1, 0);
/// Device/function of the PIIX4 power-management function (01.3).
pub const DEVFN_PM: u8 = devfn(1, 3);

/// Packs a device (0-31) and function (0-7) number the way CONFIG_ADDRESS
/// bits 15:8 do; larger numbers are truncated.
pub const fn devfn(device: u8, function: u8) -> u8 {
    ((device & MAX_DEVICE) << 3) | (function & MAX_FUNCTION)
}

/// Why a function could not be added to the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciError {
    /// The device/function number (packed as by [`devfn`]) is taken.
    SlotInUse(u8),
}

impl std::fmt::Display for PciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SlotInUse(d) => write!(f, "PCI slot {:02x}.{} is in use", d >> 3, d & 7),
        }
    }
}

impl std::error::Error for PciError {}

/// One function's configuration bytes in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunctionState {
    /// Device and function number, packed as by [`devfn`].
    pub devfn: u8,
    /// The 256 configuration bytes.
    pub config: Vec<u8>,
}

/// Everything a snapshot needs: plain data, no handles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciState {
    /// CONFIG_ADDRESS as last written (reserved bits clear).
    pub config_address: u32,
    /// The reset control register (0xCF9).
    pub reset_control: u8,
    /// A reset the guest asked for through 0xCF9 and the machine has not
    /// taken: `Some(true)` hard, `Some(false)` soft.
    pub reset_request: Option<bool>,
    /// Every function's configuration space, in devfn order.
    pub functions: Vec<PciFunctionState>,
}

/// The configuration mechanism and the functions of bus 0.
#[derive(Debug)]
pub struct Pci {
    config_address: u32,
    reset_control: u8,
    reset_request: Option<bool>,
    /// Functions sorted by devfn.
    functions: Vec<(u8, Box<dyn PciFunction>)>,
}

impl Default for Pci {
    fn default() -> Self {
        Self::new()
    }
}

impl Pci {
    /// Bus 0 of the PC at reset, holding the chipset functions.
    pub fn new() -> Self {
        let mut pci = Self {
            config_address: 0,
            reset_control: 0,
            reset_request: None,
            functions: Vec::new(),
        };
        let chipset: [(u8, Box<dyn PciFunction>); 3] = [
            (DEVFN_HOST_BRIDGE, Box::new(I440fx::new())),
            (DEVFN_ISA_BRIDGE, Box::new(chipset::piix3_isa())),
            (DEVFN_PM, Box::new(chipset::piix4_pm())),
        ];
        for (slot, f) in chipset {
            // The chipset slots are distinct, so these cannot collide.
            let _ = pci.add_function(slot, f);
        }
        pci
    }

    /// Builds bus 0 from a snapshot: the chipset functions' bytes are
    /// restored; entries for other slots (or of the wrong length) are
    /// ignored until [`Self::restore`] is called with the devices plugged.
    pub fn from_state(state: PciState) -> Self {
        let mut pci = Self::new();
        pci.restore(&state);
        pci
    }

    /// Restores CONFIG_ADDRESS and the bytes of every plugged function the
    /// snapshot has an entry for.
    pub fn restore(&mut self, state: &PciState) {
        self.config_address = state.config_address & ADDR_WRITABLE;
        self.reset_control = state.reset_control & RC_SYSTEM_RESET;
        self.reset_request = state.reset_request;
        for entry in &state.functions {
            if let Some(f) = self.function_mut(entry.devfn) {
                f.config_mut().restore_bytes(&entry.config);
            }
        }
    }

    /// The snapshot of the mechanism and every function (built, not borrowed:
    /// the functions keep their bytes themselves).
    pub fn state(&self) -> PciState {
        PciState {
            config_address: self.config_address,
            reset_control: self.reset_control,
            reset_request: self.reset_request,
            functions: self
                .functions
                .iter()
                .map(|(d, f)| PciFunctionState {
                    devfn: *d,
                    config: f.config().bytes().to_vec(),
                })
                .collect(),
        }
    }

    /// Plugs a function in at `slot` (packed as by [`devfn`]).
    pub fn add_function(
        &mut self,
        slot: u8,
        function: Box<dyn PciFunction>,
    ) -> Result<(), PciError> {
        match self.functions.binary_search_by_key(&slot, |(d, _)| *d) {
            Ok(_) => Err(PciError::SlotInUse(slot)),
            Err(at) => {
                self.functions.insert(at, (slot, function));
                Ok(())
            }
        }
    }

    /// The function at `slot`, if one is plugged there.
    pub fn function(&self, slot: u8) -> Option<&dyn PciFunction> {
        let at = self
            .functions
            .binary_search_by_key(&slot, |(d, _)| *d)
            .ok()?;
        Some(self.functions[at].1.as_ref())
    }

    /// The same, mutable.
    pub fn function_mut(&mut self, slot: u8) -> Option<&mut (dyn PciFunction + 'static)> {
        let at = self
            .functions
            .binary_search_by_key(&slot, |(d, _)| *d)
            .ok()?;
        Some(self.functions[at].1.as_mut())
    }

    /// CONFIG_ADDRESS as the guest last wrote it (reserved bits clear).
    pub fn config_address(&self) -> u32 {
        self.config_address
    }

    /// Whether reads and writes at `addr` go to DRAM, by the 440FX PAM
    /// registers (see [`chipset::pam_attributes`]). `(true, true)` outside
    /// 0xC0000-0xFFFFF.
    pub fn pam_attributes(&self, addr: u32) -> (bool, bool) {
        match self.function(DEVFN_HOST_BRIDGE) {
            Some(f) => chipset::pam_attributes(f.config(), addr),
            None => (true, true),
        }
    }

    /// The 440FX PAM0-PAM6 registers (config 0x59-0x5F; 82441FX datasheet
    /// 3.2.18), all 0 (everything to the PCI side) if no host bridge is
    /// plugged.
    pub fn pam_registers(&self) -> [u8; 7] {
        let mut pam = [0; 7];
        if let Some(f) = self.function(DEVFN_HOST_BRIDGE) {
            for (i, b) in pam.iter_mut().enumerate() {
                *b = f.config().read_u8(chipset::REG_PAM0 + i as u8);
            }
        }
        pam
    }

    /// Programs PAM0-PAM6 as a configuration write would (reserved bits
    /// stay clear), e.g. to leave what firmware leaves on a direct boot.
    pub fn set_pam_registers(&mut self, pam: [u8; 7]) {
        if let Some(f) = self.function_mut(DEVFN_HOST_BRIDGE) {
            for (i, b) in pam.into_iter().enumerate() {
                f.write_config(chipset::REG_PAM0 + i as u8, b);
            }
        }
    }

    /// The 440FX SMRAM control register (0x72).
    pub fn smram(&self) -> u8 {
        self.function(DEVFN_HOST_BRIDGE)
            .map_or(0, |f| f.config().read_u8(chipset::REG_SMRAM))
    }

    /// The IRQ PIRQ `n` (0 = PIRQA# .. 3 = PIRQD#) is routed to, if any.
    pub fn pirq_route(&self, n: u8) -> Option<u8> {
        chipset::pirq_route(self.function(DEVFN_ISA_BRIDGE)?.config(), n)
    }

    /// The PIIX4 power-management I/O base, when the guest enabled it.
    pub fn pm_io_base(&self) -> Option<u16> {
        chipset::pm_io_base(self.function(DEVFN_PM)?.config())
    }

    /// An `IN` of `size` bytes (1, 2 or 4; larger is taken as 4) at
    /// `offset`, with CONFIG_ADDRESS decoded only for a dword at offset 0.
    /// A byte at [`OFF_RESET_CONTROL`] is the reset control register; other
    /// bytes outside CONFIG_DATA read as open bus (0xFF).
    pub fn io_read(&mut self, offset: u16, size: u8) -> u32 {
        if offset == OFF_CONFIG_ADDRESS && size == 4 {
            return self.config_address;
        }
        let mut value = 0;
        for i in 0..size.min(4) {
            let off = offset.wrapping_add(u16::from(i));
            let byte = if off == OFF_RESET_CONTROL && size == 1 {
                Some(self.reset_control)
            } else {
                self.data_read(off)
            };
            value |= u32::from(byte.unwrap_or(0xFF)) << (8 * i);
        }
        value
    }

    /// An `OUT` of `size` bytes (1, 2 or 4; larger is taken as 4) at
    /// `offset`. CONFIG_ADDRESS takes only dword writes; narrower accesses
    /// there pass on to the bus unclaimed, except a byte at
    /// [`OFF_RESET_CONTROL`], which may request a reset (see
    /// [`Self::take_reset_request`]).
    pub fn io_write(&mut self, offset: u16, size: u8, value: u32) {
        if offset == OFF_CONFIG_ADDRESS && size == 4 {
            self.config_address = value & ADDR_WRITABLE;
            return;
        }
        for i in 0..size.min(4) {
            let off = offset.wrapping_add(u16::from(i));
            if off == OFF_RESET_CONTROL && size == 1 {
                self.write_reset_control(value as u8);
            } else {
                self.data_write(off, (value >> (8 * i)) as u8);
            }
        }
    }

    /// Takes a pending reset request from port 0xCF9: `Some(true)` for a
    /// hard (system) reset, `Some(false)` for a soft (CPU INIT) one.
    pub fn take_reset_request(&mut self) -> Option<bool> {
        self.reset_request.take()
    }

    fn write_reset_control(&mut self, value: u8) {
        let value = value & RC_WRITABLE;
        if value & RC_RESET_CPU != 0 && self.reset_control & RC_RESET_CPU == 0 {
            self.reset_request = Some(value & RC_SYSTEM_RESET != 0);
        }
        // RCPU is a trigger: it does not stay set after the reset starts.
        self.reset_control = value & !RC_RESET_CPU;
    }

    /// The function and register a CONFIG_DATA byte at `offset` reaches.
    fn target(&self, offset: u16) -> Option<(u8, u8)> {
        let lane = offset.checked_sub(OFF_CONFIG_DATA).filter(|l| *l < 4)?;
        let a = self.config_address;
        if a & ADDR_ENABLE == 0 || (a >> ADDR_BUS_SHIFT) as u8 != 0 {
            return None; // no cycle, or a bus behind no bridge
        }
        let slot = (a >> ADDR_DEVFN_SHIFT) as u8;
        let reg = (a & ADDR_REG_MASK) as u8 + lane as u8;
        Some((slot, reg))
    }

    fn data_read(&mut self, offset: u16) -> Option<u8> {
        let (slot, reg) = self.target(offset)?;
        Some(self.function_mut(slot)?.read_config(reg))
    }

    fn data_write(&mut self, offset: u16, value: u8) {
        if let Some((slot, reg)) = self.target(offset) {
            if let Some(f) = self.function_mut(slot) {
                f.write_config(reg, value);
            }
        }
    }
}

impl PortIo for Pci {
    fn read(&mut self, offset: u16) -> u8 {
        if offset < OFF_CONFIG_DATA {
            return (self.config_address >> (8 * offset)) as u8;
        }
        self.data_read(offset).unwrap_or(0xFF)
    }
    fn write(&mut self, offset: u16, value: u8) {
        if offset < OFF_CONFIG_DATA {
            let shift = 8 * u32::from(offset);
            let merged = (self.config_address & !(0xFF << shift)) | (u32::from(value) << shift);
            self.config_address = merged & ADDR_WRITABLE;
            return;
        }
        self.data_write(offset, value);
    }
}

#[cfg(test)]
mod tests;
