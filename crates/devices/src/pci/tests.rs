//! Tests of the configuration mechanism and bus 0, through both the sized
//! and the byte-split port views.

use super::chipset::{REG_PAM0, REG_PIRQRC, REG_PMBA, REG_PMREGMISC, REG_SMRAM, REG_TOM};
use super::config::{REG_CLASS, REG_COMMAND, REG_HEADER_TYPE, REG_STATUS};
use super::*;

/// CONFIG_ADDRESS for bus 0, `slot`, `reg`.
fn addr(slot: u8, reg: u8) -> u32 {
    ADDR_ENABLE | (u32::from(slot) << ADDR_DEVFN_SHIFT) | u32::from(reg & 0xFC)
}

/// A dword config read as firmware does it (sized accesses).
fn cfg_read(pci: &mut Pci, slot: u8, reg: u8, size: u8) -> u32 {
    pci.io_write(OFF_CONFIG_ADDRESS, 4, addr(slot, reg));
    pci.io_read(OFF_CONFIG_DATA + u16::from(reg & 3), size)
}

fn cfg_write(pci: &mut Pci, slot: u8, reg: u8, size: u8, value: u32) {
    pci.io_write(OFF_CONFIG_ADDRESS, 4, addr(slot, reg));
    pci.io_write(OFF_CONFIG_DATA + u16::from(reg & 3), size, value);
}

/// An `outl`/`inl` as a machine that splits wide accesses into bytes does.
fn split_write(pci: &mut Pci, offset: u16, size: u8, value: u32) {
    for i in 0..u16::from(size) {
        PortIo::write(pci, offset + i, (value >> (8 * i)) as u8);
    }
}

fn split_read(pci: &mut Pci, offset: u16, size: u8) -> u32 {
    (0..u16::from(size))
        .map(|i| u32::from(PortIo::read(pci, offset + i)) << (8 * i))
        .sum()
}

#[test]
fn linux_type1_probe_detects_mechanism_1() {
    // arch/x86/pci/direct.c, pci_check_type1().
    let mut pci = Pci::new();
    pci.io_write(3, 1, 0x01); // outb(0x01, 0xCFB): not a dword, not decoded
    let tmp = pci.io_read(0, 4);
    pci.io_write(0, 4, 0x8000_0000);
    assert_eq!(pci.io_read(0, 4), 0x8000_0000);
    pci.io_write(0, 4, tmp);
    assert_eq!(pci.io_read(0, 4), tmp);
    // pci_check_type2() must fail: byte reads of 0xCF8/0xCFA float.
    pci.io_write(3, 1, 0);
    pci.io_write(0, 1, 0);
    pci.io_write(2, 1, 0);
    assert_eq!(pci.io_read(0, 1), 0xFF);
    assert_eq!(pci.io_read(2, 1), 0xFF);
    // pci_sanity_check(): a host bridge class at 00.0.
    assert_eq!(cfg_read(&mut pci, 0, 0x0A, 2), 0x0600);
}

#[test]
fn linux_probe_through_split_byte_accesses() {
    let mut pci = Pci::new();
    PortIo::write(&mut pci, 3, 0x01);
    let tmp = split_read(&mut pci, 0, 4);
    split_write(&mut pci, 0, 4, 0x8000_0000);
    assert_eq!(split_read(&mut pci, 0, 4), 0x8000_0000);
    split_write(&mut pci, 0, 4, tmp);
    split_write(&mut pci, 0, 4, addr(DEVFN_ISA_BRIDGE, 0));
    assert_eq!(split_read(&mut pci, 4, 4), 0x7000_8086);
}

#[test]
fn reset_control_at_cf9() {
    let mut pci = Pci::new();
    pci.io_write(OFF_CONFIG_ADDRESS, 4, 0x8000_0800);
    assert_eq!(pci.take_reset_request(), None);
    pci.io_write(OFF_RESET_CONTROL, 1, 0x02); // SRST alone: no reset yet
    assert_eq!(pci.take_reset_request(), None);
    assert_eq!(pci.io_read(OFF_RESET_CONTROL, 1), 0x02);
    pci.io_write(OFF_RESET_CONTROL, 1, 0x06); // Linux reboot=pci: hard reset
    assert_eq!(pci.take_reset_request(), Some(true));
    assert_eq!(pci.take_reset_request(), None);
    pci.io_write(OFF_RESET_CONTROL, 1, 0xFC);
    assert_eq!(pci.take_reset_request(), Some(false));
    assert_eq!(pci.io_read(OFF_RESET_CONTROL, 1), 0x00);
    // Neither touched CONFIG_ADDRESS.
    assert_eq!(pci.io_read(OFF_CONFIG_ADDRESS, 4), 0x8000_0800);
}

#[test]
fn config_address_reserved_bits_read_zero() {
    let mut pci = Pci::new();
    pci.io_write(0, 4, 0xFFFF_FFFF);
    assert_eq!(pci.io_read(0, 4), 0x80FF_FFFC);
    split_write(&mut pci, 0, 4, 0x7F00_0003);
    assert_eq!(pci.config_address(), 0);
}

#[test]
fn ids_at_every_lane_and_width() {
    let mut pci = Pci::new();
    for (slot, id) in [
        (DEVFN_HOST_BRIDGE, 0x1237_8086u32),
        (DEVFN_ISA_BRIDGE, 0x7000_8086),
        (DEVFN_PM, 0x7113_8086),
    ] {
        assert_eq!(cfg_read(&mut pci, slot, 0, 4), id);
        assert_eq!(cfg_read(&mut pci, slot, 0, 2), id & 0xFFFF);
        assert_eq!(cfg_read(&mut pci, slot, 2, 2), id >> 16);
        for lane in 0..4u8 {
            assert_eq!(cfg_read(&mut pci, slot, lane, 1), (id >> (8 * lane)) & 0xFF);
            split_write(&mut pci, 0, 4, addr(slot, 0));
            assert_eq!(
                split_read(&mut pci, 4 + u16::from(lane), 1),
                (id >> (8 * lane)) & 0xFF
            );
        }
    }
    assert_eq!(cfg_read(&mut pci, DEVFN_ISA_BRIDGE, 0x08, 4), 0x0601_0000);
    assert_eq!(cfg_read(&mut pci, DEVFN_PM, 0x08, 4), 0x0680_0003);
    assert_eq!(cfg_read(&mut pci, DEVFN_HOST_BRIDGE, 0x08, 4), 0x0600_0002);
    assert_eq!(
        cfg_read(&mut pci, DEVFN_ISA_BRIDGE, REG_HEADER_TYPE, 1),
        0x80
    );
    assert_eq!(
        cfg_read(&mut pci, DEVFN_HOST_BRIDGE, REG_HEADER_TYPE, 1),
        0x00
    );
}

#[test]
fn absent_functions_read_all_ones() {
    let mut pci = Pci::new();
    for slot in [devfn(1, 1), devfn(2, 0), devfn(31, 7)] {
        assert_eq!(cfg_read(&mut pci, slot, 0, 4), 0xFFFF_FFFF);
        assert_eq!(cfg_read(&mut pci, slot, 2, 2), 0xFFFF);
        assert_eq!(cfg_read(&mut pci, slot, 3, 1), 0xFF);
        cfg_write(&mut pci, slot, 0x10, 4, 0); // dropped, no panic
    }
    // Bus 1 does not exist; nor does anything with the enable bit clear.
    pci.io_write(0, 4, ADDR_ENABLE | 1 << ADDR_BUS_SHIFT);
    assert_eq!(pci.io_read(4, 4), 0xFFFF_FFFF);
    pci.io_write(0, 4, 0);
    assert_eq!(pci.io_read(4, 4), 0xFFFF_FFFF);
    // A word straddling the end of CONFIG_DATA: the byte past it floats.
    pci.io_write(0, 4, addr(0, 0));
    assert_eq!(pci.io_read(7, 2), 0xFF12);
    assert_eq!(pci.io_read(0x100, 4), 0xFFFF_FFFF);
}

#[test]
fn read_only_identity_and_command_bits() {
    let mut pci = Pci::new();
    for slot in [DEVFN_HOST_BRIDGE, DEVFN_ISA_BRIDGE, DEVFN_PM] {
        let before: Vec<u32> = [0, 8, 0x0C]
            .iter()
            .map(|r| cfg_read(&mut pci, slot, *r, 4))
            .collect();
        for reg in [0u8, 8] {
            cfg_write(&mut pci, slot, reg, 4, 0xFFFF_FFFF);
            cfg_write(&mut pci, slot, reg, 4, 0);
        }
        cfg_write(&mut pci, slot, 0x0E, 1, 0x7F);
        assert_eq!(cfg_read(&mut pci, slot, 0, 4), before[0]);
        assert_eq!(cfg_read(&mut pci, slot, 8, 4), before[1]);
        assert_eq!(cfg_read(&mut pci, slot, 0x0E, 1), before[2] >> 16 & 0xFF);
        // No BARs on the chipset functions.
        cfg_write(&mut pci, slot, 0x10, 4, 0xFFFF_FFFF);
        assert_eq!(cfg_read(&mut pci, slot, 0x10, 4), 0);
    }
    // Host bridge: memory and master enables are hard-wired on.
    cfg_write(&mut pci, 0, REG_COMMAND, 2, 0);
    assert_eq!(cfg_read(&mut pci, 0, REG_COMMAND, 2), 0x0006);
    cfg_write(&mut pci, 0, REG_COMMAND, 2, 0xFFFF);
    assert_eq!(cfg_read(&mut pci, 0, REG_COMMAND, 2), 0x0146);
    // PM function: only I/O space enable.
    cfg_write(&mut pci, DEVFN_PM, REG_COMMAND, 2, 0xFFFF);
    assert_eq!(cfg_read(&mut pci, DEVFN_PM, REG_COMMAND, 2), 0x0001);
    // Interrupt line is scratch everywhere.
    cfg_write(&mut pci, DEVFN_PM, 0x3C, 1, 9);
    assert_eq!(cfg_read(&mut pci, DEVFN_PM, 0x3C, 4), 0x0109);
}

#[test]
fn status_write_one_to_clear_through_the_port() {
    let mut pci = Pci::new();
    pci.function_mut(DEVFN_HOST_BRIDGE)
        .unwrap()
        .config_mut()
        .set_status(0x2000 | 0x1000);
    assert_eq!(cfg_read(&mut pci, 0, REG_STATUS, 2), 0x3280);
    // A dword write of the command word must not clear status by writing 0.
    cfg_write(&mut pci, 0, REG_COMMAND, 4, 0x0000_0006);
    assert_eq!(cfg_read(&mut pci, 0, REG_STATUS, 2), 0x3280);
    cfg_write(&mut pci, 0, REG_STATUS, 2, 0x2000);
    assert_eq!(cfg_read(&mut pci, 0, REG_STATUS, 2), 0x1280);
    cfg_write(&mut pci, 0, REG_COMMAND, 4, 0xFFFF_0006);
    assert_eq!(cfg_read(&mut pci, 0, REG_COMMAND, 4), 0x0280_0006);
}

#[test]
fn pam_registers_through_the_port() {
    let mut pci = Pci::new();
    assert_eq!(pci.pam_attributes(0xF0000), (false, false));
    // SeaBIOS's make_bios_writable: PAM0 = 0x30, PAM1-6 = 0x33 (dwords at 0x58/0x5C).
    cfg_write(&mut pci, 0, 0x59, 1, 0x30);
    cfg_write(&mut pci, 0, 0x5A, 2, 0x3333);
    cfg_write(&mut pci, 0, 0x5C, 4, 0x3333_3333);
    for a in (0xC0000..0x100000).step_by(0x1000) {
        assert_eq!(pci.pam_attributes(a), (true, true), "{a:#x}");
    }
    // make_bios_readonly for the BIOS segment: read RAM, write to the ROM.
    cfg_write(&mut pci, 0, REG_PAM0, 1, 0x10);
    assert_eq!(pci.pam_attributes(0xFFFF0), (true, false));
    assert_eq!(pci.pam_attributes(0xEFFFF), (true, true));
    assert_eq!(cfg_read(&mut pci, 0, 0x58, 4), 0x3333_1000);
    assert_eq!(pci.pam_attributes(0xB8000), (true, true));
    assert_eq!(pci.pam_attributes(u32::MAX), (true, true));
}

#[test]
fn pam_register_bytes_accessor() {
    let mut pci = Pci::new();
    assert_eq!(pci.pam_registers(), [0; 7]);
    cfg_write(&mut pci, 0, 0x58, 4, 0x1133_FF00); // PAM0 0xFF, PAM1 0x33, PAM2 0x11
    assert_eq!(pci.pam_registers(), [0x30, 0x33, 0x11, 0, 0, 0, 0]);
    // Programmed from the machine side: reserved bits stay clear.
    pci.set_pam_registers([0x1F, 0xFF, 0x33, 0x33, 0x33, 0x33, 0x01]);
    assert_eq!(
        pci.pam_registers(),
        [0x10, 0x33, 0x33, 0x33, 0x33, 0x33, 0x01]
    );
    assert_eq!(cfg_read(&mut pci, 0, 0x5C, 4), 0x0133_3333);
    assert_eq!(pci.pam_attributes(0xF0000), (true, false));
}

#[test]
fn smram_register_is_stored() {
    let mut pci = Pci::new();
    assert_eq!(pci.smram(), 0x02);
    cfg_write(&mut pci, 0, REG_SMRAM, 1, 0x4A);
    assert_eq!(pci.smram(), 0x4A);
    cfg_write(&mut pci, 0, REG_SMRAM, 1, 0x1A); // D_LCK closes D_OPEN for good
    cfg_write(&mut pci, 0, REG_SMRAM, 1, 0x4A);
    assert_eq!(pci.smram(), 0x1A);
}

#[test]
fn pirq_routes_through_the_port() {
    let mut pci = Pci::new();
    assert_eq!(
        cfg_read(&mut pci, DEVFN_ISA_BRIDGE, REG_PIRQRC, 4),
        0x8080_8080
    );
    // SeaBIOS piix_isa_bridge_setup: PIRQA-D = 10, 10, 11, 11.
    cfg_write(&mut pci, DEVFN_ISA_BRIDGE, REG_PIRQRC, 4, 0x0B0B_0A0A);
    assert_eq!(
        (0..4).map(|n| pci.pirq_route(n)).collect::<Vec<_>>(),
        [Some(10), Some(10), Some(11), Some(11)]
    );
    cfg_write(&mut pci, DEVFN_ISA_BRIDGE, REG_PIRQRC + 1, 1, 0x8A);
    assert_eq!(pci.pirq_route(1), None);
    assert_eq!(pci.pirq_route(4), None);
    // Other PIIX3 registers are plain storage.
    assert_eq!(cfg_read(&mut pci, DEVFN_ISA_BRIDGE, REG_TOM, 1), 0x02);
    cfg_write(&mut pci, DEVFN_ISA_BRIDGE, REG_TOM, 1, 0xF2);
    assert_eq!(cfg_read(&mut pci, DEVFN_ISA_BRIDGE, REG_TOM, 1), 0xF2);
}

#[test]
fn pm_io_base_through_the_port() {
    let mut pci = Pci::new();
    assert_eq!(pci.pm_io_base(), None);
    // SeaBIOS piix4_pm_setup: PMBA = 0x600 | 1, then PMREGMISC = 1.
    cfg_write(&mut pci, DEVFN_PM, REG_PMBA, 4, 0x0601);
    assert_eq!(pci.pm_io_base(), None);
    cfg_write(&mut pci, DEVFN_PM, REG_PMREGMISC, 1, 0x01);
    assert_eq!(pci.pm_io_base(), Some(0x600));
    assert_eq!(cfg_read(&mut pci, DEVFN_PM, REG_PMBA, 4), 0x0601);
    cfg_write(&mut pci, DEVFN_PM, REG_PMBA, 4, 0); // bit 0 stays: I/O space
    assert_eq!(cfg_read(&mut pci, DEVFN_PM, REG_PMBA, 4), 0x0001);
    assert_eq!(pci.pm_io_base(), Some(0));
}

#[test]
fn plugged_function_and_slot_conflicts() {
    let mut pci = Pci::new();
    let mut ide = PciConfigSpace::new(0x8086, 0x7010, 0, [0x01, 0x01, 0x80]);
    ide.set_io_bar(4, 16);
    assert_eq!(pci.add_function(devfn(1, 1), Box::new(ide.clone())), Ok(()));
    assert_eq!(
        pci.add_function(DEVFN_PM, Box::new(ide)),
        Err(PciError::SlotInUse(DEVFN_PM))
    );
    assert_eq!(cfg_read(&mut pci, devfn(1, 1), 0, 4), 0x7010_8086);
    cfg_write(&mut pci, devfn(1, 1), 0x20, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut pci, devfn(1, 1), 0x20, 4), 0xFFFF_FFF1);
    cfg_write(&mut pci, devfn(1, 1), 0x20, 4, 0xC000);
    assert_eq!(
        pci.function(devfn(1, 1)).unwrap().config().bar_address(4),
        Some(0xC000)
    );
    assert_eq!(
        PciError::SlotInUse(DEVFN_PM).to_string(),
        "PCI slot 01.3 is in use"
    );
}

#[test]
fn snapshot_round_trip() {
    let mut pci = Pci::new();
    cfg_write(&mut pci, 0, REG_PAM0, 1, 0x30);
    cfg_write(&mut pci, DEVFN_ISA_BRIDGE, REG_PIRQRC, 1, 0x0B);
    cfg_write(&mut pci, DEVFN_PM, REG_PMREGMISC, 1, 1);
    let state = pci.state();
    let restored = Pci::from_state(state.clone());
    assert_eq!(restored.state(), state);
    assert_eq!(restored.pirq_route(0), Some(11));
    assert_eq!(restored.pam_attributes(0xF0000), (true, true));
    // A damaged snapshot neither panics nor breaks the defaults.
    let bad = PciState {
        config_address: u32::MAX,
        reset_control: 0xFF,
        reset_request: None,
        functions: vec![
            PciFunctionState {
                devfn: 0,
                config: vec![0; 3],
            },
            PciFunctionState {
                devfn: 99,
                config: vec![],
            },
        ],
    };
    let mut pci = Pci::from_state(bad);
    assert_eq!(pci.config_address(), 0x80FF_FFFC);
    assert_eq!(cfg_read(&mut pci, 0, 0, 4), 0x1237_8086);
}

/// xorshift64*: deterministic, seeded, no host entropy.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn fuzz(seed: u64, steps: usize) -> Pci {
    let mut rng = Rng(seed);
    let mut pci = Pci::new();
    for _ in 0..steps {
        let r = rng.next();
        let offset = (r % 10) as u16;
        let size = [1u8, 2, 4, 4, 3, 0, 200][(r >> 8) as usize % 7];
        let value = (rng.next() >> 3) as u32;
        let value = match r >> 16 & 7 {
            // Aim CONFIG_ADDRESS at the functions that exist most of the time.
            0..=3 => addr([0, 8, 11, devfn(1, 1)][(r >> 20) as usize % 4], value as u8),
            _ => value,
        };
        match r >> 24 & 3 {
            0 => {
                pci.io_read(offset, size);
            }
            1 => pci.io_write(offset, size, value),
            2 => {
                PortIo::read(&mut pci, offset);
            }
            _ => PortIo::write(&mut pci, offset, value as u8),
        }
    }
    pci
}

#[test]
fn fuzz_random_port_accesses_keep_invariants() {
    for seed in [1, 0xDEAD_BEEF, 0x0123_4567_89AB_CDEF] {
        let mut pci = fuzz(seed, 50_000);
        let state = pci.state();
        assert_eq!(Pci::from_state(state.clone()).state(), state);
        assert_eq!(fuzz(seed, 50_000).state(), state, "fuzz is deterministic");
        assert_eq!(pci.config_address() & !ADDR_WRITABLE, 0);
        for (slot, id, class) in [
            (DEVFN_HOST_BRIDGE, 0x1237_8086u32, 0x06_0000),
            (DEVFN_ISA_BRIDGE, 0x7000_8086, 0x06_0100),
            (DEVFN_PM, 0x7113_8086, 0x06_8000),
        ] {
            assert_eq!(cfg_read(&mut pci, slot, 0, 4), id);
            assert_eq!(cfg_read(&mut pci, slot, REG_CLASS - 1, 4) >> 8, class);
        }
        assert_eq!(
            cfg_read(&mut pci, DEVFN_ISA_BRIDGE, REG_HEADER_TYPE, 1),
            0x80
        );
        assert_eq!(cfg_read(&mut pci, 0, REG_PAM0, 1) & 0xCF, 0);
        assert_eq!(cfg_read(&mut pci, DEVFN_PM, REG_PMBA, 4) & 0xFFFF_003F, 1);
    }
}
