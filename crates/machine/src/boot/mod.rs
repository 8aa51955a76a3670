//! Boot paths: a raw firmware ROM that starts at the reset vector, the
//! Multiboot (v1) protocol for ELF and a.out-kludge kernels, and the Linux
//! x86 boot protocol for bzImage kernels. Each loader checks its image and
//! fails with a message naming what is wrong, never a panic.

pub mod linux;
pub mod multiboot;

use oxide86_cpu::state::{cr0, SegmentCache};
use oxide86_cpu::{Cpu, SegReg};

use crate::memory_map::PhysMemory;

/// A kernel image could not be booted.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The image is not in the format the loader expects.
    #[error("{0}")]
    BadImage(String),
    /// Something does not fit in guest RAM.
    #[error("{what} ({bytes} bytes at {at:#x}) does not fit in guest RAM of {ram} bytes")]
    DoesNotFit {
        /// What was being placed.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// Where.
        at: u32,
        /// The RAM size.
        ram: usize,
    },
}

/// Copies `data` to guest-physical `at` (which must be plain RAM).
pub(crate) fn place(
    memory: &mut PhysMemory,
    what: &'static str,
    at: u32,
    data: &[u8],
) -> Result<(), BootError> {
    let ram = memory.ram_mut();
    let len = ram.len();
    if !ram.load(at as usize, data) {
        return Err(BootError::DoesNotFit {
            what,
            bytes: data.len(),
            at,
            ram: len,
        });
    }
    Ok(())
}

/// Where the boot GDT goes, and its flat code and data selectors.
pub(crate) const BOOT_GDT: u32 = 0x500;

/// Puts the CPU in 32-bit protected mode with flat segments (code selector
/// `cs`, data `ds`), interrupts off and paging off, as the Multiboot and
/// Linux 32-bit protocols require, with a GDT in memory that matches.
pub(crate) fn enter_flat32(
    cpu: &mut Cpu,
    memory: &mut PhysMemory,
    cs: u16,
    ds: u16,
    eip: u32,
) -> Result<(), BootError> {
    // Null, then flat code and data at the selectors asked for.
    let mut gdt = vec![0u8; usize::from(cs.max(ds)) + 8];
    gdt[usize::from(cs)..usize::from(cs) + 8]
        .copy_from_slice(&0x00CF_9A00_0000_FFFFu64.to_le_bytes());
    gdt[usize::from(ds)..usize::from(ds) + 8]
        .copy_from_slice(&0x00CF_9200_0000_FFFFu64.to_le_bytes());
    place(memory, "boot GDT", BOOT_GDT, &gdt)?;
    memory.set_a20(true);
    let s = &mut cpu.state;
    s.cr0 = (s.cr0 | cr0::PE) & !cr0::PG;
    s.gdtr.base = BOOT_GDT;
    s.gdtr.limit = (gdt.len() - 1) as u16;
    for seg in SegReg::ALL {
        s.seg[seg as usize] = SegmentCache::flat(ds, false, 0);
    }
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(cs, true, 0);
    s.eflags = 2;
    s.eip = eip;
    Ok(())
}
