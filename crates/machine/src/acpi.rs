//! ACPI tables for the PC (ACPI 6.4 specification, chapter 5 "ACPI
//! Software Programming Model": 5.2.5 RSDP, 5.2.7 RSDT, 5.2.9 FADT, 5.2.10
//! FACS, 5.2.11.1 DSDT, 5.2.12 MADT). Revision-1-style tables with 32-bit
//! pointers, which every ACPI-aware i386 kernel accepts; the DSDT holds just
//! the `_S5` sleep package, so a guest's `poweroff` reaches the PIIX4 PM
//! block's SLP_EN.

/// Where the machine's ACPI objects sit.
#[derive(Clone, Copy, Debug)]
pub struct AcpiLayout {
    /// Physical address of the table area (16-byte aligned; the RSDP goes
    /// first, so put it in 0xE0000-0xFFFFF where an OS scans for it).
    pub base: u32,
    /// The PM1 event/control/timer block's I/O base (PM1a_EVT; PM1a_CNT is
    /// base + 4, PM_TMR base + 8).
    pub pm_base: u16,
    /// The SCI's ISA IRQ.
    pub sci_irq: u8,
    /// Local APIC physical address.
    pub lapic: u32,
    /// I/O APIC physical address.
    pub ioapic: u32,
}

impl Default for AcpiLayout {
    fn default() -> Self {
        Self {
            base: 0xE_0000,
            pm_base: 0x600,
            sci_irq: 9,
            lapic: 0xFEE0_0000,
            ioapic: 0xFEC0_0000,
        }
    }
}

/// `_S5` as AML: `Name (_S5, Package (4) { 0, 0, 0, 0 })` (ACPI 6.4, 20.2.5).
const AML_S5: [u8; 12] = [
    0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
];

/// The byte that makes `bytes` sum to zero.
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// A system description table header followed by `body`, checksummed.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(36 + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(b"OXIDE ");
    t.extend_from_slice(b"OXIDE86 ");
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(b"OXID");
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// Builds the tables; returns the bytes to place at `layout.base` (the
/// RSDP is at offset 0).
pub fn build(layout: &AcpiLayout) -> Vec<u8> {
    let align = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(16) * 16, 0);
    let mut area = vec![0u8; 32]; // RSDP, filled last
                                  // FACS (64 bytes, 64-byte aligned).
    area.resize(64, 0);
    let facs_at = layout.base + area.len() as u32;
    let mut facs = vec![0u8; 64];
    facs[0..4].copy_from_slice(b"FACS");
    facs[4..8].copy_from_slice(&64u32.to_le_bytes());
    area.extend_from_slice(&facs);
    // DSDT.
    let dsdt_at = layout.base + area.len() as u32;
    area.extend(table(b"DSDT", 1, &AML_S5));
    align(&mut area);
    // FADT (revision 1 layout, 116 bytes).
    let fadt_at = layout.base + area.len() as u32;
    let mut f = vec![0u8; 116 - 36];
    let put32 = |f: &mut Vec<u8>, off: usize, v: u32| {
        f[off - 36..off - 32].copy_from_slice(&v.to_le_bytes())
    };
    put32(&mut f, 36, facs_at); // FIRMWARE_CTRL
    put32(&mut f, 40, dsdt_at); // DSDT
    f[46 - 36..48 - 36].copy_from_slice(&u16::from(layout.sci_irq).to_le_bytes()); // SCI_INT
    put32(&mut f, 56, u32::from(layout.pm_base)); // PM1a_EVT_BLK
    put32(&mut f, 64, u32::from(layout.pm_base) + 4); // PM1a_CNT_BLK
    put32(&mut f, 76, u32::from(layout.pm_base) + 8); // PM_TMR_BLK
    f[88 - 36] = 4; // PM1_EVT_LEN
    f[89 - 36] = 2; // PM1_CNT_LEN
    f[91 - 36] = 4; // PM_TMR_LEN
                    // Flags: WBINVD works, the PM timer is 24 bits (TMR_VAL_EXT clear),
                    // power button is a control method (none here), no RTC wake.
    put32(&mut f, 112, 1 | (1 << 4) | (1 << 5));
    area.extend(table(b"FACP", 1, &f));
    align(&mut area);
    // MADT: the local APIC, the I/O APIC and the ISA overrides.
    let madt_at = layout.base + area.len() as u32;
    let mut m = Vec::new();
    m.extend_from_slice(&layout.lapic.to_le_bytes());
    m.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT: 8259s present
    m.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]); // processor local APIC: UID 0, ID 0, enabled
    m.extend_from_slice(&[1, 12, 1, 0]); // I/O APIC: ID 1
    m.extend_from_slice(&layout.ioapic.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes()); // GSI base 0
    m.extend_from_slice(&[2, 10, 0, 0]); // override: ISA IRQ0 -> GSI 2
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&[2, 10, 0, layout.sci_irq]); // SCI: active high, level
    m.extend_from_slice(&u32::from(layout.sci_irq).to_le_bytes());
    m.extend_from_slice(&((1u16 << 0) | (3 << 2)).to_le_bytes());
    area.extend(table(b"APIC", 1, &m));
    align(&mut area);
    // RSDT.
    let rsdt_at = layout.base + area.len() as u32;
    let mut r = Vec::new();
    r.extend_from_slice(&fadt_at.to_le_bytes());
    r.extend_from_slice(&madt_at.to_le_bytes());
    area.extend(table(b"RSDT", 1, &r));
    align(&mut area);
    // RSDP (revision 0: 20 bytes).
    let mut rsdp = Vec::with_capacity(20);
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0);
    rsdp.extend_from_slice(b"OXIDE ");
    rsdp.push(0); // revision 0 (ACPI 1.0)
    rsdp.extend_from_slice(&rsdt_at.to_le_bytes());
    rsdp[8] = checksum(&rsdp);
    area[..20].copy_from_slice(&rsdp);
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }

    #[test]
    fn tables_chain_from_the_rsdp_with_valid_checksums() {
        let l = AcpiLayout::default();
        let a = build(&l);
        assert_eq!(&a[0..8], b"RSD PTR ");
        assert_eq!(a[..20].iter().fold(0u8, |x, y| x.wrapping_add(*y)), 0);
        let off = |addr: u32| (addr - l.base) as usize;
        let rsdt = off(u32_at(&a, 16));
        assert_eq!(&a[rsdt..rsdt + 4], b"RSDT");
        let len = u32_at(&a, rsdt + 4) as usize;
        assert_eq!(
            a[rsdt..rsdt + len]
                .iter()
                .fold(0u8, |x, y| x.wrapping_add(*y)),
            0
        );
        let mut seen = Vec::new();
        for i in 0..(len - 36) / 4 {
            let t = off(u32_at(&a, rsdt + 36 + 4 * i));
            let tlen = u32_at(&a, t + 4) as usize;
            assert_eq!(
                a[t..t + tlen].iter().fold(0u8, |x, y| x.wrapping_add(*y)),
                0,
                "checksum"
            );
            seen.push(a[t..t + 4].to_vec());
            if &a[t..t + 4] == b"FACP" {
                let dsdt = off(u32_at(&a, t + 40));
                assert_eq!(&a[dsdt..dsdt + 4], b"DSDT");
                assert_eq!(&a[dsdt + 36..dsdt + 41], &[0x08, b'_', b'S', b'5', b'_']);
                assert_eq!(u32_at(&a, t + 64), 0x604, "PM1a_CNT");
                let facs = off(u32_at(&a, t + 36));
                assert_eq!(&a[facs..facs + 4], b"FACS");
                assert_eq!(facs % 64, 0);
            }
        }
        assert_eq!(seen, vec![b"FACP".to_vec(), b"APIC".to_vec()]);
    }
}
