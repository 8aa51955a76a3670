//! Multiboot v1 loading (the Multiboot Specification 0.6.96, sections 3.1
//! "OS image format" and 3.3 "Boot information format"): the header in the
//! first 8 KiB, ELF32 program headers or the a.out-kludge addresses, the
//! boot information structure with the memory map, command line and
//! modules, and the 32-bit entry with EAX = 0x2BADB002 and EBX = the
//! information structure.

use oxide86_cpu::Cpu;

use super::{enter_flat32, place, BootError};
use crate::memory_map::PhysMemory;

/// The header's magic.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// What the loader leaves in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// Where the boot information and its strings, map and module list go.
const INFO_AREA: u32 = 0x9000;
/// Modules are placed from here up, page aligned.
const MODULES_START: u32 = 0x0100_0000;

const FLAG_PAGE_ALIGN: u32 = 1 << 0;
const FLAG_MEMORY_INFO: u32 = 1 << 1;
const FLAG_VIDEO_MODE: u32 = 1 << 2;
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;

/// A module to load beside the kernel.
#[derive(Clone, Debug)]
pub struct Module {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its string (the command line the kernel sees).
    pub cmdline: String,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
}

/// Finds the Multiboot header: its offset and flags.
pub fn find_header(image: &[u8]) -> Option<(usize, u32)> {
    (0..image.len().min(8192)).step_by(4).find_map(|off| {
        let magic = u32_at(image, off)?;
        let flags = u32_at(image, off + 4)?;
        let sum = u32_at(image, off + 8)?;
        (magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(sum) == 0)
            .then_some((off, flags))
    })
}

/// Loads the kernel's segments; returns (entry point, end of the image).
fn load_kernel(
    memory: &mut PhysMemory,
    image: &[u8],
    header: usize,
    flags: u32,
) -> Result<(u32, u32), BootError> {
    let bad = |m: &str| BootError::BadImage(format!("multiboot kernel: {m}"));
    if flags & FLAG_AOUT_KLUDGE != 0 {
        let field =
            |i: usize| u32_at(image, header + 12 + 4 * i).ok_or_else(|| bad("header truncated"));
        let (header_addr, load_addr, load_end, bss_end, entry) =
            (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        if load_addr > header_addr {
            return Err(bad("load_addr above header_addr"));
        }
        let file_off = header
            .checked_sub((header_addr - load_addr) as usize)
            .ok_or_else(|| bad("header_addr/load_addr inconsistent with the header's offset"))?;
        let len = if load_end == 0 {
            image.len() - file_off
        } else {
            load_end.saturating_sub(load_addr) as usize
        };
        let data = file_off
            .checked_add(len)
            .and_then(|e| image.get(file_off..e))
            .ok_or_else(|| bad("load range runs past the file"))?;
        place(memory, "multiboot kernel", load_addr, data)?;
        let end = load_addr
            .checked_add(len as u32)
            .ok_or_else(|| bad("image wraps past 4 GiB"))?;
        if bss_end > end {
            if (bss_end - end) as usize > memory.ram().len() {
                return Err(bad("bss_end_addr beyond guest RAM"));
            }
            place(
                memory,
                "multiboot kernel bss",
                end,
                &vec![0; (bss_end - end) as usize],
            )?;
        }
        return Ok((entry, bss_end.max(end)));
    }
    // ELF32, little-endian, i386.
    if image.get(0..4) != Some(b"\x7FELF") || image.get(4) != Some(&1) || image.get(5) != Some(&1) {
        return Err(bad(
            "not an ELF32 little-endian file and no a.out-kludge addresses",
        ));
    }
    if u16_at(image, 18) != Some(3) {
        return Err(bad("ELF machine is not i386"));
    }
    let entry = u32_at(image, 24).ok_or_else(|| bad("ELF header truncated"))?;
    let phoff = u32_at(image, 28).ok_or_else(|| bad("ELF header truncated"))? as usize;
    let phentsize = usize::from(u16_at(image, 42).unwrap_or(0));
    let phnum = usize::from(u16_at(image, 44).unwrap_or(0));
    let mut end = 0u32;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let field =
            |k: usize| u32_at(image, ph + 4 * k).ok_or_else(|| bad("program header truncated"));
        if field(0)? != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr, filesz, memsz) =
            (field(1)? as usize, field(3)?, field(4)? as usize, field(5)?);
        let data = offset
            .checked_add(filesz)
            .and_then(|e| image.get(offset..e))
            .ok_or_else(|| bad("segment runs past the file"))?;
        place(memory, "multiboot kernel segment", paddr, data)?;
        if memsz as usize > filesz {
            let bss_at = paddr
                .checked_add(filesz as u32)
                .ok_or_else(|| bad("segment wraps past 4 GiB"))?;
            if memsz as usize - filesz > memory.ram().len() {
                return Err(bad("segment's memory size exceeds guest RAM"));
            }
            place(
                memory,
                "multiboot kernel bss",
                bss_at,
                &vec![0; memsz as usize - filesz],
            )?;
        }
        end = end.max(paddr.saturating_add(memsz));
    }
    if end == 0 {
        return Err(bad("no loadable segments"));
    }
    Ok((entry, end))
}

/// Loads a Multiboot kernel and its modules and puts the CPU at its entry.
pub fn boot(
    cpu: &mut Cpu,
    memory: &mut PhysMemory,
    image: &[u8],
    cmdline: &str,
    modules: &[Module],
) -> Result<(), BootError> {
    let (header, flags) = find_header(image)
        .ok_or_else(|| BootError::BadImage("no Multiboot header in the first 8 KiB".into()))?;
    if flags & FLAG_VIDEO_MODE != 0 {
        return Err(BootError::BadImage(
            "multiboot kernel requires a video mode, which this machine cannot set".into(),
        ));
    }
    let known = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;
    if flags & 0xFFFF & !known != 0 {
        return Err(BootError::BadImage(format!(
            "multiboot header requires unknown features {:#x}",
            flags & 0xFFFF & !known
        )));
    }
    let (entry, kernel_end) = load_kernel(memory, image, header, flags)?;
    // Modules, page aligned, after the kernel and MODULES_START.
    let mut at = MODULES_START.max(kernel_end.saturating_add(0xFFF) & !0xFFF);
    let mut mod_list = Vec::new();
    for m in modules {
        place(memory, "multiboot module", at, &m.data)?;
        let end = at + m.data.len() as u32; // `place` checked it fits in RAM
        mod_list.push((at, end, m.cmdline.clone()));
        at = (end + 0xFFF) & !0xFFF;
    }
    // The information structure, then strings, the module list and the map.
    let ram = memory.ram().len() as u64;
    let mut area = Vec::new();
    let mut info = [0u32; 22];
    let mut strings = Vec::new();
    let push_string = |strings: &mut Vec<u8>, s: &str| {
        let off = strings.len();
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off
    };
    let info_size = 88u32;
    let cmd_off = push_string(&mut strings, cmdline);
    let name_off = push_string(&mut strings, "oxide86");
    let mod_name_offs: Vec<usize> = mod_list
        .iter()
        .map(|(_, _, c)| push_string(&mut strings, c))
        .collect();
    let strings_at = INFO_AREA + info_size;
    let mods_at = (strings_at + strings.len() as u32 + 3) & !3;
    let mmap_at = mods_at + 16 * mod_list.len() as u32;
    let regions: [(u64, u64, u32); 3] = [
        (0, 0x9F000, 1),
        (0x9F000, 0x61000, 2), // EBDA, VGA and ROM area: reserved
        (0x10_0000, ram.saturating_sub(0x10_0000), 1),
    ];
    info[0] = 1 | 4 | 8 | 64 | 512; // mem, cmdline, mods, mmap, boot loader name
    info[1] = 640; // mem_lower in KiB
    info[2] = (ram.saturating_sub(0x10_0000) / 1024) as u32; // mem_upper
    info[4] = strings_at + cmd_off as u32;
    info[5] = mod_list.len() as u32;
    info[6] = mods_at;
    info[11] = 24 * regions.len() as u32; // mmap_length
    info[12] = mmap_at;
    info[16] = strings_at + name_off as u32;
    for v in info {
        area.extend_from_slice(&v.to_le_bytes());
    }
    area.extend_from_slice(&strings);
    area.resize((mods_at - INFO_AREA) as usize, 0);
    for ((start, end, _), name) in mod_list.iter().zip(&mod_name_offs) {
        for v in [*start, *end, strings_at + *name as u32, 0] {
            area.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (base, len, typ) in regions {
        area.extend_from_slice(&20u32.to_le_bytes());
        area.extend_from_slice(&base.to_le_bytes());
        area.extend_from_slice(&len.to_le_bytes());
        area.extend_from_slice(&typ.to_le_bytes());
    }
    place(memory, "multiboot information", INFO_AREA, &area)?;
    enter_flat32(cpu, memory, 0x08, 0x10, entry)?;
    cpu.state.gpr[0] = BOOTLOADER_MAGIC;
    cpu.state.gpr[3] = INFO_AREA;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram::GuestRam;

    fn kludge_image() -> Vec<u8> {
        // Header at 0, loaded at 1 MiB; entry right after the header.
        let mut img = Vec::new();
        let flags = FLAG_AOUT_KLUDGE | FLAG_MEMORY_INFO;
        for v in [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)),
            0x10_0000,
            0x10_0000,
            0,
            0x10_2000,
            0x10_0020,
        ] {
            img.extend_from_slice(&v.to_le_bytes());
        }
        img.resize(0x20, 0);
        img.extend_from_slice(&[0xF4]); // hlt at the entry
        img
    }

    #[test]
    fn kludge_kernel_loads_and_enters_with_the_magic() {
        let mut mem = PhysMemory::new(GuestRam::new(32 << 20).unwrap(), Vec::new());
        let mut cpu = Cpu::new(oxide86_cpu::CpuModel::P6);
        let m = Module {
            data: vec![7; 100],
            cmdline: "initrd".into(),
        };
        boot(&mut cpu, &mut mem, &kludge_image(), "console=ttyS0", &[m]).unwrap();
        assert_eq!(cpu.state.eip, 0x10_0020);
        assert_eq!(cpu.state.gpr[0], BOOTLOADER_MAGIC);
        assert_eq!(mem.read_u8(0x10_0020), 0xF4);
        let info = INFO_AREA;
        assert_eq!(mem.read_u32(info + 20), 1); // mods_count
        let mods = mem.read_u32(info + 24);
        assert_eq!(mem.read_u32(mods), MODULES_START);
        let cmd = mem.read_u32(info + 16);
        assert_eq!(mem.read_u8(cmd), b'c');
        assert!(cpu.state.code32());
    }

    #[test]
    fn missing_header_is_an_error_not_a_panic() {
        let mut mem = PhysMemory::new(GuestRam::new(1 << 20).unwrap(), Vec::new());
        let mut cpu = Cpu::new(oxide86_cpu::CpuModel::P6);
        let err = boot(&mut cpu, &mut mem, &[0u8; 100], "", &[]).unwrap_err();
        assert!(err.to_string().contains("no Multiboot header"));
        let mut img = kludge_image();
        img.truncate(20); // header cut short
        assert!(boot(&mut cpu, &mut mem, &img, "", &[]).is_err());
    }
}
