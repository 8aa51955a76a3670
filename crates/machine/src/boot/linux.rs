//! The Linux/x86 boot protocol for bzImage kernels, 32-bit entry
//! (Documentation/arch/x86/boot.rst in the Linux sources: "The real-mode
//! kernel header", "32-bit boot protocol", "Details of header fields";
//! arch/x86/include/uapi/asm/bootparam.h for `boot_params`).
//!
//! The protected-mode kernel goes to 1 MiB, `boot_params` (the "zero page")
//! holds the setup header, the E820 map and the command-line and initrd
//! pointers, and the CPU starts at `code32_start` in flat 32-bit mode with
//! ESI pointing at `boot_params` and `__BOOT_CS`/`__BOOT_DS` = 0x10/0x18.

use oxide86_cpu::Cpu;

use super::{enter_flat32, place, BootError};
use crate::memory_map::PhysMemory;

/// Oldest protocol version this loader supports (2.06: cmdline_size).
pub const MIN_PROTOCOL: u16 = 0x0206;
/// Where `boot_params` goes.
const ZERO_PAGE: u32 = 0x7000;
/// Where the command line goes.
const CMDLINE_AT: u32 = 0x2_0000;
/// Where the protected-mode kernel goes (loadflags LOADED_HIGH).
const KERNEL_AT: u32 = 0x10_0000;
/// Offsets in the setup header / boot_params.
mod off {
    pub const E820_ENTRIES: usize = 0x1E8;
    pub const SETUP_SECTS: usize = 0x1F1;
    pub const BOOT_FLAG: usize = 0x1FE;
    pub const JUMP: usize = 0x200;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const CODE32_START: usize = 0x214;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21C;
    pub const HEAP_END_PTR: usize = 0x224;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22C;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const E820_TABLE: usize = 0x2D0;
    pub const EXT_MEM_K: usize = 0x002;
    pub const ALT_MEM_K: usize = 0x1E0;
}
const LOADED_HIGH: u8 = 1 << 0;
const CAN_USE_HEAP: u8 = 1 << 7;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The E820 map this machine reports: low RAM, the reserved hole below
/// 1 MiB, RAM above 1 MiB, and the BIOS area at the top of 4 GiB.
pub fn e820_map(ram: u64) -> Vec<(u64, u64, u32)> {
    let mut v = vec![(0, 0x9_F000, 1), (0x9_F000, 0x6_1000, 2)];
    if ram > 0x10_0000 {
        v.push((0x10_0000, ram.min(0xE000_0000) - 0x10_0000, 1));
    }
    v.push((0xFFFC_0000, 0x4_0000, 2));
    v
}

/// Loads a bzImage (and initrd) and puts the CPU at its 32-bit entry.
pub fn boot(
    cpu: &mut Cpu,
    memory: &mut PhysMemory,
    image: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
) -> Result<(), BootError> {
    let bad = |m: String| BootError::BadImage(format!("bzImage: {m}"));
    if image.len() < 0x400 || image.get(off::HEADER..off::HEADER + 4) != Some(b"HdrS") {
        return Err(bad(
            "no \"HdrS\" setup header at 0x202 (not a Linux bzImage)".into(),
        ));
    }
    if u16_at(image, off::BOOT_FLAG) != 0xAA55 {
        return Err(bad("boot flag 0xAA55 missing at 0x1FE".into()));
    }
    let version = u16_at(image, off::VERSION);
    if version < MIN_PROTOCOL {
        return Err(bad(format!(
            "boot protocol {}.{:02} is older than 2.06",
            version >> 8,
            version & 0xFF
        )));
    }
    if image[off::LOADFLAGS] & LOADED_HIGH == 0 {
        return Err(bad(
            "not a bzImage (zImage kernels load low and are not supported)".into(),
        ));
    }
    let setup_sects = match image[off::SETUP_SECTS] {
        0 => 4,
        n => usize::from(n),
    };
    let kernel_off = (setup_sects + 1) * 512;
    let kernel = image
        .get(kernel_off..)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("truncated: no protected-mode kernel after the setup sectors".into()))?;
    place(memory, "kernel", KERNEL_AT, kernel)?;

    // boot_params: zeroed, with the setup header copied in.
    let mut zp = vec![0u8; 4096];
    let header_end = (off::JUMP + 2 + usize::from(image[off::JUMP + 1]))
        .min(image.len())
        .min(4096);
    zp[off::SETUP_SECTS..header_end].copy_from_slice(&image[off::SETUP_SECTS..header_end]);
    zp[off::TYPE_OF_LOADER] = 0xFF;
    zp[off::LOADFLAGS] |= CAN_USE_HEAP;
    zp[off::HEAP_END_PTR..off::HEAP_END_PTR + 2]
        .copy_from_slice(&(0xE000u16 - 0x200).to_le_bytes());
    // Command line, bounded by the kernel's cmdline_size.
    let max_cmdline = u32_at(image, off::CMDLINE_SIZE) as usize;
    if cmdline.len() > max_cmdline {
        return Err(bad(format!(
            "command line of {} bytes exceeds the kernel's limit of {max_cmdline}",
            cmdline.len()
        )));
    }
    let mut cmd = cmdline.as_bytes().to_vec();
    cmd.push(0);
    place(memory, "kernel command line", CMDLINE_AT, &cmd)?;
    zp[off::CMD_LINE_PTR..off::CMD_LINE_PTR + 4].copy_from_slice(&CMDLINE_AT.to_le_bytes());
    // Memory: E820 plus the legacy fields.
    let ram = memory.ram().len() as u64;
    let map = e820_map(ram);
    for (i, (base, len, typ)) in map.iter().enumerate() {
        let o = off::E820_TABLE + 20 * i;
        zp[o..o + 8].copy_from_slice(&base.to_le_bytes());
        zp[o + 8..o + 16].copy_from_slice(&len.to_le_bytes());
        zp[o + 16..o + 20].copy_from_slice(&typ.to_le_bytes());
    }
    zp[off::E820_ENTRIES] = map.len() as u8;
    let ext_k = (ram.saturating_sub(0x10_0000) / 1024) as u32;
    zp[off::EXT_MEM_K..off::EXT_MEM_K + 2]
        .copy_from_slice(&(ext_k.min(0xFFFF) as u16).to_le_bytes());
    zp[off::ALT_MEM_K..off::ALT_MEM_K + 4].copy_from_slice(&ext_k.to_le_bytes());
    // The initrd goes as high as initrd_addr_max and RAM allow, page aligned.
    if let Some(rd) = initrd {
        let max = u64::from(u32_at(image, off::INITRD_ADDR_MAX)).min(ram.min(0xE000_0000) - 1);
        let kernel_end = u64::from(KERNEL_AT) + kernel.len() as u64;
        let at = (max + 1)
            .checked_sub(rd.len() as u64)
            .map(|a| a & !0xFFF)
            .filter(|a| *a >= kernel_end);
        let at = at.ok_or_else(|| {
            bad(format!(
                "initrd of {} bytes does not fit below {:#x} above the kernel",
                rd.len(),
                max
            ))
        })?;
        place(memory, "initrd", at as u32, rd)?;
        zp[off::RAMDISK_IMAGE..off::RAMDISK_IMAGE + 4].copy_from_slice(&(at as u32).to_le_bytes());
        zp[off::RAMDISK_SIZE..off::RAMDISK_SIZE + 4]
            .copy_from_slice(&(rd.len() as u32).to_le_bytes());
    }
    place(memory, "boot_params", ZERO_PAGE, &zp)?;
    let entry = u32_at(image, off::CODE32_START);
    enter_flat32(cpu, memory, 0x10, 0x18, entry)?;
    let s = &mut cpu.state;
    s.gpr = [0; 8];
    s.gpr[6] = ZERO_PAGE; // ESI
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::GuestRam;

    fn fake_bzimage() -> Vec<u8> {
        let mut img = vec![0u8; 5 * 512 + 16];
        img[off::SETUP_SECTS] = 4;
        img[off::BOOT_FLAG..off::BOOT_FLAG + 2].copy_from_slice(&0xAA55u16.to_le_bytes());
        img[off::JUMP + 1] = 0x60;
        img[off::HEADER..off::HEADER + 4].copy_from_slice(b"HdrS");
        img[off::VERSION..off::VERSION + 2].copy_from_slice(&0x020Fu16.to_le_bytes());
        img[off::LOADFLAGS] = LOADED_HIGH;
        img[off::CODE32_START..off::CODE32_START + 4].copy_from_slice(&KERNEL_AT.to_le_bytes());
        img[off::INITRD_ADDR_MAX..off::INITRD_ADDR_MAX + 4]
            .copy_from_slice(&0x37FF_FFFFu32.to_le_bytes());
        img[off::CMDLINE_SIZE..off::CMDLINE_SIZE + 4].copy_from_slice(&2048u32.to_le_bytes());
        img[5 * 512] = 0xF4;
        img
    }

    #[test]
    fn loads_kernel_cmdline_initrd_and_zero_page() {
        let mut mem = PhysMemory::new(GuestRam::new(64 << 20).unwrap(), Vec::new());
        let mut cpu = Cpu::new(oxide86_cpu::CpuModel::P6);
        boot(
            &mut cpu,
            &mut mem,
            &fake_bzimage(),
            Some(&[9u8; 5000]),
            "console=ttyS0",
        )
        .unwrap();
        assert_eq!(cpu.state.eip, KERNEL_AT);
        assert_eq!(cpu.state.gpr[6], ZERO_PAGE);
        assert_eq!(mem.read_u8(KERNEL_AT), 0xF4);
        assert_eq!(mem.read_u8(ZERO_PAGE + off::TYPE_OF_LOADER as u32), 0xFF);
        let rd = mem.read_u32(ZERO_PAGE + off::RAMDISK_IMAGE as u32);
        assert_eq!(rd & 0xFFF, 0);
        assert!(rd + 5000 <= 64 << 20);
        assert_eq!(mem.read_u8(rd), 9);
        assert_eq!(mem.read_u8(CMDLINE_AT), b'c');
        assert_eq!(mem.read_u8(ZERO_PAGE + off::E820_ENTRIES as u32), 4);
        assert_eq!(
            cpu.state.seg[oxide86_cpu::SegReg::Cs as usize].selector,
            0x10
        );
    }

    #[test]
    fn rejects_what_is_not_a_bzimage() {
        let mut mem = PhysMemory::new(GuestRam::new(8 << 20).unwrap(), Vec::new());
        let mut cpu = Cpu::new(oxide86_cpu::CpuModel::P6);
        assert!(boot(&mut cpu, &mut mem, &[0u8; 100], None, "")
            .unwrap_err()
            .to_string()
            .contains("HdrS"));
        let mut old = fake_bzimage();
        old[off::VERSION] = 0x02;
        old[off::VERSION + 1] = 0x02;
        assert!(boot(&mut cpu, &mut mem, &old, None, "")
            .unwrap_err()
            .to_string()
            .contains("older than 2.06"));
        let long = "x".repeat(3000);
        assert!(boot(&mut cpu, &mut mem, &fake_bzimage(), None, &long).is_err());
    }
}
