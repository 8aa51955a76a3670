//! Looking at a machine from outside without disturbing it: a read-only
//! page walk (no accessed or dirty bits set, no TLB fill, no #PF), the
//! guest's page-table mappings, and memory reads and writes by linear or
//! physical address for debuggers (Intel SDM Vol. 3A, 4.3 "32-Bit Paging",
//! 4.4 "PAE Paging").
//!
//! Debugger writes go straight to RAM (ROM and holes ignore them) and drop
//! decoded instructions at the written bytes, so patched code runs as
//! patched.

use oxide86_cpu::paging::cr4;
use oxide86_cpu::state::cr0;
use oxide86_cpu::Cpu;

use crate::memory_map::PhysMemory;
use crate::pc::Pc;

/// One mapping of the guest's page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Linear base.
    pub linear: u32,
    /// Physical base (truncated to the 32-bit bus).
    pub phys: u32,
    /// Size in bytes (4 KiB, 2 MiB or 4 MiB; or a run of them when coalesced).
    pub size: u32,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
}

const P: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;

fn read_u64(mem: &PhysMemory, addr: u32) -> u64 {
    u64::from(mem.read_u32(addr)) | (u64::from(mem.read_u32(addr.wrapping_add(4))) << 32)
}

/// The physical address `linear` maps to under the CPU's current paging
/// mode, or `None` if it is not mapped. Nothing in the guest changes.
pub fn translate(cpu: &Cpu, mem: &PhysMemory, linear: u32) -> Option<u32> {
    let s = &cpu.state;
    if s.cr0 & cr0::PG == 0 {
        return Some(linear);
    }
    if s.cr4 & cr4::PAE != 0 {
        let pdpte = match cpu.pdptes {
            Some(p) => p[(linear >> 30) as usize],
            None => read_u64(mem, (s.cr3 & !0x1F).wrapping_add(8 * (linear >> 30))),
        };
        if pdpte & P == 0 {
            return None;
        }
        let pde_at = (pdpte as u32 & !0xFFF).wrapping_add(8 * ((linear >> 21) & 0x1FF));
        let pde = read_u64(mem, pde_at);
        if pde & P == 0 {
            return None;
        }
        if pde & PS != 0 {
            return Some((pde as u32 & 0xFFE0_0000) | (linear & 0x1F_FFFF));
        }
        let pte = read_u64(
            mem,
            (pde as u32 & !0xFFF).wrapping_add(8 * ((linear >> 12) & 0x1FF)),
        );
        return (pte & P != 0).then_some((pte as u32 & !0xFFF) | (linear & 0xFFF));
    }
    let pde = mem.read_u32((s.cr3 & !0xFFF).wrapping_add(4 * (linear >> 22)));
    if u64::from(pde) & P == 0 {
        return None;
    }
    if u64::from(pde) & PS != 0 && s.cr4 & cr4::PSE != 0 {
        return Some((pde & 0xFFC0_0000) | (linear & 0x3F_FFFF));
    }
    let pte = mem.read_u32((pde & !0xFFF).wrapping_add(4 * ((linear >> 12) & 0x3FF)));
    (u64::from(pte) & P != 0).then_some((pte & !0xFFF) | (linear & 0xFFF))
}

/// Every present mapping of the guest's page tables, adjacent ones with
/// the same rights and contiguous physical pages coalesced. Empty with
/// paging off.
pub fn mappings(cpu: &Cpu, mem: &PhysMemory) -> Vec<Mapping> {
    let s = &cpu.state;
    let mut out: Vec<Mapping> = Vec::new();
    let mut push = |m: Mapping| {
        if let Some(last) = out.last_mut() {
            if last.writable == m.writable
                && last.user == m.user
                && last.linear.wrapping_add(last.size) == m.linear
                && last.phys.wrapping_add(last.size) == m.phys
                && last.size.checked_add(m.size).is_some()
            {
                last.size += m.size;
                return;
            }
        }
        out.push(m);
    };
    if s.cr0 & cr0::PG == 0 {
        return out;
    }
    let rights = |e: u64, up: (bool, bool)| (e & RW != 0 && up.0, e & US != 0 && up.1);
    if s.cr4 & cr4::PAE != 0 {
        for i in 0..4u32 {
            let pdpte = match cpu.pdptes {
                Some(p) => p[i as usize],
                None => read_u64(mem, (s.cr3 & !0x1F).wrapping_add(8 * i)),
            };
            if pdpte & P == 0 {
                continue;
            }
            for j in 0..512u32 {
                let pde = read_u64(mem, (pdpte as u32 & !0xFFF).wrapping_add(8 * j));
                let base = (i << 30) | (j << 21);
                if pde & P == 0 {
                    continue;
                }
                let (w, u) = rights(pde, (true, true));
                if pde & PS != 0 {
                    push(Mapping {
                        linear: base,
                        phys: pde as u32 & 0xFFE0_0000,
                        size: 2 << 20,
                        writable: w,
                        user: u,
                    });
                    continue;
                }
                for k in 0..512u32 {
                    let pte = read_u64(mem, (pde as u32 & !0xFFF).wrapping_add(8 * k));
                    if pte & P != 0 {
                        let (w, u) = rights(pte, (w, u));
                        push(Mapping {
                            linear: base | (k << 12),
                            phys: pte as u32 & !0xFFF,
                            size: 0x1000,
                            writable: w,
                            user: u,
                        });
                    }
                }
            }
        }
        return out;
    }
    for i in 0..1024u32 {
        let pde = u64::from(mem.read_u32((s.cr3 & !0xFFF).wrapping_add(4 * i)));
        if pde & P == 0 {
            continue;
        }
        let (w, u) = rights(pde, (true, true));
        if pde & PS != 0 && s.cr4 & cr4::PSE != 0 {
            push(Mapping {
                linear: i << 22,
                phys: pde as u32 & 0xFFC0_0000,
                size: 4 << 20,
                writable: w,
                user: u,
            });
            continue;
        }
        for k in 0..1024u32 {
            let pte = u64::from(mem.read_u32((pde as u32 & !0xFFF).wrapping_add(4 * k)));
            if pte & P != 0 {
                let (w, u) = rights(pte, (w, u));
                push(Mapping {
                    linear: (i << 22) | (k << 12),
                    phys: pte as u32 & !0xFFF,
                    size: 0x1000,
                    writable: w,
                    user: u,
                });
            }
        }
    }
    out
}

impl Pc {
    /// Reads guest memory at linear addresses through the current page
    /// tables into `buf`; returns how many bytes were readable (it stops
    /// at the first unmapped page).
    pub fn read_linear(&self, linear: u32, buf: &mut [u8]) -> usize {
        for (i, b) in buf.iter_mut().enumerate() {
            match translate(&self.cpu, &self.board.memory, linear.wrapping_add(i as u32)) {
                Some(p) => *b = self.board.memory.read_u8(p),
                None => return i,
            }
        }
        buf.len()
    }

    /// Writes guest memory at linear addresses; returns how many bytes
    /// were mapped (and written, where RAM).
    pub fn write_linear(&mut self, linear: u32, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            match translate(&self.cpu, &self.board.memory, linear.wrapping_add(i as u32)) {
                Some(p) => self.write_physical(p, &[b]),
                None => return i,
            }
        }
        data.len()
    }

    /// Reads physical memory (RAM and ROM; holes read 0xFF).
    pub fn read_physical(&self, phys: u32, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.board.memory.read_u8(phys.wrapping_add(i as u32));
        }
    }

    /// Writes physical RAM (ROM and holes ignore it), dropping decoded
    /// instructions at the written bytes.
    pub fn write_physical(&mut self, phys: u32, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let p = phys.wrapping_add(i as u32);
            self.board.memory.write_u8(p, b);
            if self.cpu.icache.is_code(p, 1) {
                self.cpu.icache.invalidate(p, 1);
            }
        }
    }
}
