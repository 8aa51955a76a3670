//! The page walker: 32-bit paging with 4 KiB and 4 MiB (CR4.PSE) pages, PAE
//! paging with 2 MiB pages and the NX bit (EFER.NXE), global pages
//! (CR4.PGE), CR0.WP, accessed and dirty bits, and page-fault error codes
//! (Intel SDM Vol. 3A, 4.3 "32-Bit Paging", 4.4 "PAE Paging", 4.6 "Access
//! Rights", 4.7 "Page-Fault Exceptions", 4.8 "Accessed and Dirty Flags").
//!
//! Permissions are checked before the accessed and dirty bits are written,
//! so a faulting access leaves the tables untouched. PDPTEs are loaded into
//! [`Cpu::pdptes`] by MOV to CR3/CR0/CR4 (#GP on reserved bits), so edits to
//! a live PDPT are seen only after the next load, as on hardware. Physical
//! addresses above 4 GiB are truncated to the 32-bit bus.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::memory::Access;
use crate::state::cr0;
use crate::tlb::rights;

/// CR4 bits the walker reads (SDM Vol. 3A, 2.5).
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u32 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u32 = 1 << 1;
    /// Time-stamp disable (RDTSC at CPL > 0 faults).
    pub const TSD: u32 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u32 = 1 << 3;
    /// Page-size extensions (4 MiB pages).
    pub const PSE: u32 = 1 << 4;
    /// Physical-address extension.
    pub const PAE: u32 = 1 << 5;
    /// Machine-check enable.
    pub const MCE: u32 = 1 << 6;
    /// Page-global enable.
    pub const PGE: u32 = 1 << 7;
    /// RDPMC allowed at any privilege level.
    pub const PCE: u32 = 1 << 8;
    /// FXSAVE/FXRSTOR and SSE enabled by the OS.
    pub const OSFXSR: u32 = 1 << 9;
    /// Unmasked SIMD exceptions supported by the OS.
    pub const OSXMMEXCPT: u32 = 1 << 10;
}

/// IA32_EFER.NXE.
pub const EFER_NXE: u64 = 1 << 11;

/// Page-table entry bits.
mod pte {
    pub const P: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const US: u64 = 1 << 2;
    pub const A: u64 = 1 << 5;
    pub const D: u64 = 1 << 6;
    pub const PS: u64 = 1 << 7;
    pub const G: u64 = 1 << 8;
    pub const NX: u64 = 1 << 63;
}

/// Page-fault error-code bits (SDM Vol. 3A, 4.7).
pub mod pf_error {
    /// The page was present (a protection violation).
    pub const PRESENT: u32 = 1 << 0;
    /// A write.
    pub const WRITE: u32 = 1 << 1;
    /// A user-mode access.
    pub const USER: u32 = 1 << 2;
    /// A reserved bit was set in a paging-structure entry.
    pub const RSVD: u32 = 1 << 3;
    /// An instruction fetch (with PAE and EFER.NXE).
    pub const FETCH: u32 = 1 << 4;
}

/// PDPTE bits that must be clear in a present entry (MAXPHYADDR = 36):
/// bits 1-2, 5-8 and 36-63.
const PDPTE_RESERVED: u64 = 0xFFFF_FFF0_0000_01E6;

/// Reads the four PDPTEs of the PAE table at `cr3` (physical, 32-byte aligned).
fn read_pdptes<B: Bus + ?Sized>(bus: &mut B, cr3: u32) -> [u64; 4] {
    let base = cr3 & !0x1F;
    let mut p = [0u64; 4];
    for (i, e) in p.iter_mut().enumerate() {
        let at = base.wrapping_add(8 * i as u32);
        *e = u64::from(bus.read_u32(at)) | (u64::from(bus.read_u32(at.wrapping_add(4))) << 32);
    }
    p
}

impl Cpu {
    /// Reads the PDPTEs of the table at `cr3` as MOV to CR3, CR0 or CR4
    /// does with PAE paging on: #GP(0) if a present entry sets a reserved
    /// bit (SDM Vol. 3A, 4.4.1). The caller stores them once the MOV commits.
    pub(crate) fn fetch_pdptes<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        cr3: u32,
    ) -> Result<[u64; 4], Exception> {
        let p = read_pdptes(bus, cr3);
        if p.iter().any(|e| e & pte::P != 0 && e & PDPTE_RESERVED != 0) {
            return Err(Exception::GeneralProtection(0));
        }
        Ok(p)
    }
}

/// One level of a walk: the entry's address and value.
#[derive(Clone, Copy)]
struct Level {
    addr: u32,
    value: u64,
    wide: bool,
}

impl Cpu {
    /// Builds the #PF for `linear` with the given status bits.
    fn page_fault(&self, linear: u32, access: Access, user: bool, bits: u32) -> Exception {
        let mut code = bits;
        if access == Access::Write {
            code |= pf_error::WRITE;
        }
        if user {
            code |= pf_error::USER;
        }
        if access == Access::Execute
            && self.state.cr4 & cr4::PAE != 0
            && self.state.msr.efer & EFER_NXE != 0
        {
            code |= pf_error::FETCH;
        }
        Exception::PageFault {
            linear,
            error_code: code,
        }
    }

    /// Walks the page tables for `linear`, checks the access, sets the
    /// accessed and dirty bits, fills the soft TLB and returns the physical
    /// address.
    pub(crate) fn walk<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        access: Access,
        user: bool,
    ) -> Result<u32, Exception> {
        self.note_bus_event();
        let cached_pdpte = if self.state.cr4 & cr4::PAE != 0 {
            let pdptes = match self.pdptes {
                Some(p) => p,
                None => {
                    let p = read_pdptes(bus, self.state.cr3);
                    self.pdptes = Some(p);
                    p
                }
            };
            pdptes[(linear >> 30) as usize]
        } else {
            0
        };
        let s = &self.state;
        let pae = s.cr4 & cr4::PAE != 0;
        let nxe = pae && s.msr.efer & EFER_NXE != 0;
        let mut levels: [Option<Level>; 3] = [None; 3];
        let read = |bus: &mut B, addr: u32, wide: bool| {
            let lo = u64::from(bus.read_u32(addr));
            if wide {
                lo | (u64::from(bus.read_u32(addr.wrapping_add(4))) << 32)
            } else {
                lo
            }
        };
        // Reserved bits per level for PAE (MAXPHYADDR = 36); NX is reserved
        // without EFER.NXE.
        let high_reserved = 0x7FF0_0000_0000_0000u64 | if nxe { 0 } else { pte::NX };
        let rsvd = |v: u64| v & (high_reserved | 0x000F_FFF0_0000_0000) != 0;
        let (page_base, page_mask, leaf_index);
        if pae {
            let pdpte = cached_pdpte;
            if pdpte & pte::P == 0 {
                return Err(self.page_fault(linear, access, user, 0));
            }
            if pdpte & PDPTE_RESERVED != 0 {
                return Err(self.page_fault(
                    linear,
                    access,
                    user,
                    pf_error::PRESENT | pf_error::RSVD,
                ));
            }
            let pde_addr = (pdpte as u32 & !0xFFF) | (((linear >> 21) & 0x1FF) << 3);
            let pde = read(bus, pde_addr, true);
            levels[0] = Some(Level {
                addr: pde_addr,
                value: pde,
                wide: true,
            });
            if pde & pte::P == 0 {
                return Err(self.page_fault(linear, access, user, 0));
            }
            if rsvd(pde) || (pde & pte::PS != 0 && pde & 0x1F_E000 != 0) {
                return Err(self.page_fault(
                    linear,
                    access,
                    user,
                    pf_error::PRESENT | pf_error::RSVD,
                ));
            }
            if pde & pte::PS != 0 {
                page_base = pde as u32 & 0xFFE0_0000;
                page_mask = 0x1F_FFFF;
                leaf_index = 0;
            } else {
                let pte_addr = (pde as u32 & !0xFFF) | (((linear >> 12) & 0x1FF) << 3);
                let e = read(bus, pte_addr, true);
                levels[1] = Some(Level {
                    addr: pte_addr,
                    value: e,
                    wide: true,
                });
                if e & pte::P == 0 {
                    return Err(self.page_fault(linear, access, user, 0));
                }
                if rsvd(e) {
                    return Err(self.page_fault(
                        linear,
                        access,
                        user,
                        pf_error::PRESENT | pf_error::RSVD,
                    ));
                }
                page_base = e as u32 & !0xFFF;
                page_mask = 0xFFF;
                leaf_index = 1;
            }
        } else {
            let pde_addr = (s.cr3 & !0xFFF) | ((linear >> 22) << 2);
            let pde = read(bus, pde_addr, false);
            levels[0] = Some(Level {
                addr: pde_addr,
                value: pde,
                wide: false,
            });
            if pde & pte::P == 0 {
                return Err(self.page_fault(linear, access, user, 0));
            }
            if pde & pte::PS != 0 && s.cr4 & cr4::PSE != 0 {
                // Bits 13-21 are PSE-36 address bits, which this CPU lacks.
                if pde & 0x3F_E000 != 0 {
                    return Err(self.page_fault(
                        linear,
                        access,
                        user,
                        pf_error::PRESENT | pf_error::RSVD,
                    ));
                }
                page_base = pde as u32 & 0xFFC0_0000;
                page_mask = 0x3F_FFFF;
                leaf_index = 0;
            } else {
                let pte_addr = (pde as u32 & !0xFFF) | (((linear >> 12) & 0x3FF) << 2);
                let e = read(bus, pte_addr, false);
                levels[1] = Some(Level {
                    addr: pte_addr,
                    value: e,
                    wide: false,
                });
                if e & pte::P == 0 {
                    return Err(self.page_fault(linear, access, user, 0));
                }
                page_base = e as u32 & !0xFFF;
                page_mask = 0xFFF;
                leaf_index = 1;
            }
        }
        // Combined rights: every level must allow user / write; any NX forbids fetch.
        let mut us = true;
        let mut rw = true;
        let mut nx = false;
        for l in levels.iter().flatten() {
            us &= l.value & pte::US != 0;
            rw &= l.value & pte::RW != 0;
            nx |= nxe && l.value & pte::NX != 0;
        }
        let leaf = levels[leaf_index].expect("the leaf level was read");
        let wp = s.cr0 & cr0::WP != 0;
        let allowed = match access {
            Access::Read => !user || us,
            Access::Execute => (!user || us) && !nx,
            Access::Write => (!user || us) && (rw || (!user && !wp)),
        };
        if !allowed {
            return Err(self.page_fault(linear, access, user, pf_error::PRESENT));
        }
        // Accessed bits on every level used, dirty on the leaf for a write.
        for (i, l) in levels.iter().enumerate() {
            let Some(l) = l else { continue };
            let mut v = l.value | pte::A;
            if i == leaf_index && access == Access::Write {
                v |= pte::D;
            }
            if v != l.value {
                bus.write_u32(l.addr, v as u32);
                if l.wide && (v >> 32) != (l.value >> 32) {
                    bus.write_u32(l.addr.wrapping_add(4), (v >> 32) as u32);
                }
                if self.icache.is_code(l.addr, 4) {
                    self.icache.invalidate(l.addr, 4);
                }
            }
        }
        let dirty = leaf.value & pte::D != 0 || access == Access::Write;
        let global = leaf.value & pte::G != 0 && s.cr4 & cr4::PGE != 0;
        let mut r = rights::SUP_READ;
        if !nx {
            r |= rights::SUP_EXEC;
        }
        if dirty && (rw || !wp) {
            r |= rights::SUP_WRITE;
        }
        if us {
            r |= rights::USER_READ;
            if !nx {
                r |= rights::USER_EXEC;
            }
            if dirty && rw {
                r |= rights::USER_WRITE;
            }
        }
        if global {
            r |= rights::GLOBAL;
        }
        if leaf_index == 0 {
            r |= rights::LARGE;
        }
        let phys = page_base | (linear & page_mask);
        self.tlb.insert(linear, phys & !0xFFF, r);
        Ok(phys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuModel, FlatRam};

    #[test]
    fn pdpte_reserved_bits_fault_at_load_and_absent_entries_are_ignored() {
        let mut cpu = Cpu::new(CpuModel::P6);
        let mut ram = FlatRam::new(0x10000);
        ram.load(0x1000, &(0x2000u64 | 1).to_le_bytes());
        ram.load(0x1008, &0xFFFF_FFFF_FFFF_FFFEu64.to_le_bytes()); // not present
        assert_eq!(cpu.fetch_pdptes(&mut ram, 0x1000).unwrap()[0], 0x2001);
        ram.load(0x1000, &(0x2000u64 | 1 | 4).to_le_bytes()); // U/S is reserved
        assert_eq!(
            cpu.fetch_pdptes(&mut ram, 0x1000),
            Err(Exception::GeneralProtection(0))
        );
        ram.load(0x1000, &(0x2000u64 | 1 | (1 << 40)).to_le_bytes());
        assert!(cpu.fetch_pdptes(&mut ram, 0x1000).is_err());
    }
}
