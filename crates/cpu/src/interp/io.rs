//! Port I/O: IN and OUT, and the I/O permission check shared with INS/OUTS
//! (Intel SDM Vol. 1, 19.5 "Protected-Mode I/O": IOPL and the TSS I/O
//! permission bitmap).

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::state::{eflags, Reg};
use iced_x86::{Instruction, OpKind};

use super::operand::op_width;

impl Cpu {
    /// Checks that the current privilege may access `size` ports at `port`:
    /// always in real mode; in protected mode when CPL <= IOPL, else (and
    /// always in virtual-8086 mode) every port's bit in the TSS I/O
    /// permission bitmap must be clear.
    pub fn check_io<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        port: u16,
        size: u32,
    ) -> Result<(), Exception> {
        let s = &self.state;
        if s.cr0 & crate::state::cr0::PE == 0 {
            return Ok(());
        }
        let iopl = (s.eflags & eflags::IOPL) >> 12;
        let v86 = s.eflags & eflags::VM != 0;
        if !v86 && u32::from(s.cpl()) <= iopl {
            return Ok(());
        }
        // Only a 32-bit TSS (type 9 or 11) has a bitmap.
        let tr = s.tr;
        let tss_type = tr.flags & 0xF;
        if (tss_type != 9 && tss_type != 11) || tr.limit < 0x67 {
            return Err(Exception::GeneralProtection(0));
        }
        let map_base = self.read_linear_system(bus, tr.base.wrapping_add(0x66), 2)?;
        let byte = map_base + u32::from(port) / 8;
        if byte + 1 > tr.limit {
            return Err(Exception::GeneralProtection(0));
        }
        let bits = self.read_linear_system(bus, tr.base.wrapping_add(byte), 2)?;
        let mask = ((1u32 << size) - 1) << (port % 8);
        if bits & mask != 0 {
            return Err(Exception::GeneralProtection(0));
        }
        Ok(())
    }
}

/// The port of an IN/OUT: an imm8 or DX.
fn port_of(cpu: &Cpu, insn: &Instruction, n: u32) -> u16 {
    if insn.op_kind(n) == OpKind::Register {
        cpu.state.gpr[Reg::Edx as usize] as u16
    } else {
        insn.immediate8() as u16
    }
}

/// `IN acc, port`.
pub fn in_<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = op_width(insn, 0);
    let port = port_of(cpu, insn, 1);
    cpu.check_io(bus, port, size)?;
    cpu.note_io_access(port, size);
    bus.sync_time(cpu.state.icount);
    let v = bus.io_read(port, size as u8);
    cpu.state.set_reg(Reg::Eax, size, v);
    Ok(())
}

/// `OUT port, acc`.
pub fn out<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = op_width(insn, 1);
    let port = port_of(cpu, insn, 0);
    cpu.check_io(bus, port, size)?;
    cpu.note_io_access(port, size);
    let v = cpu.state.reg(Reg::Eax, size);
    bus.sync_time(cpu.state.icount);
    bus.io_write(port, size as u8, v);
    cpu.sync_memory_map(bus); // an OUT may have moved the A20 gate
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::{assemble, flat32_cpu, CODE};
    use crate::{Bus, FlatRam, StepOutcome};
    use iced_x86::code_asm::*;

    /// RAM plus a port that asks the caller to stop (as the ACPI power-off
    /// register does).
    struct StopPort {
        ram: FlatRam,
        stop: bool,
    }

    impl Bus for StopPort {
        fn read_u8(&mut self, addr: u32) -> u8 {
            self.ram.read_u8(addr)
        }
        fn write_u8(&mut self, addr: u32, value: u8) {
            self.ram.write_u8(addr, value)
        }
        fn ram(&mut self) -> Option<&mut [u8]> {
            self.ram.ram()
        }
        fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
            self.ram.ram_page_offset(paddr)
        }
        fn memory_map_generation(&self) -> u64 {
            self.ram.memory_map_generation()
        }
        fn io_write(&mut self, port: u16, _size: u8, _value: u32) {
            self.stop |= port == 0x604;
        }
    }

    /// An OUT reached from a quiet run (after quiet instructions, from the
    /// decode cache) stops `Cpu::run_until` right after it, as stepping
    /// does: the Linux power-off retired one more instruction under the
    /// interpreter than under the JIT.
    #[test]
    fn run_until_stops_right_after_an_out_inside_a_quiet_run() {
        let code = assemble(32, |a| {
            let mut top = a.create_label();
            a.mov(ecx, 3u32)?;
            a.set_label(&mut top)?;
            // Ports 0x606, 0x605, then 0x604, which asks to stop.
            a.lea(edx, dword_ptr(ecx + 0x603))?;
            a.mov(eax, ecx)?;
            a.out(dx, ax)?;
            a.dec(ecx)?;
            a.jnz(top)
        });
        let mut cpu = flat32_cpu();
        let mut bus = StopPort {
            ram: FlatRam::new(1 << 20),
            stop: false,
        };
        bus.ram.load(CODE, &code);
        let (o, n) = cpu.run_until(&mut bus, 100, |b| b.stop);
        assert_eq!(o, StepOutcome::Continue);
        assert!(cpu.icache.stats.hits > 0, "{:?}", cpu.icache.stats);
        assert_eq!((n, cpu.state.icount), (14, 14), "steps, retired");
        assert_eq!(cpu.state.gpr[1], 1, "ECX: stopped before the DEC");
    }
}
