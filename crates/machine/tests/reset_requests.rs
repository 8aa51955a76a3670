//! Every reset line of the PC resets the machine: port 0x92 bit 0, the
//! keyboard controller's pulse of output-port bit 0 (command 0xFE), and the
//! PIIX reset control register at 0xCF9 (RCPU rising).

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, MB_ADDRESSES, MB_MEMORY};

use iced_x86::code_asm::*;
use oxide86_machine::pc::{BootSource, Pc, PcConfig, PcExit};

const LOAD_AT: u32 = 0x0010_0000;

/// A Multiboot (a.out kludge) kernel that writes `value` to `port`, then
/// halts with interrupts off.
fn kernel(port: u16, value: u8) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    multiboot_header(&mut a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x20);
    a.mov(dx, u32::from(port)).unwrap();
    a.mov(al, u32::from(value)).unwrap();
    a.out(dx, al).unwrap();
    let mut end = a.create_label();
    a.set_label(&mut end).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.jmp(end).unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

fn run(port: u16, value: u8) -> PcExit {
    let config = PcConfig {
        ram_bytes: 2 << 20,
        no_reboot: true,
        max_instructions: Some(100_000),
        ..PcConfig::default()
    };
    let boot = BootSource::Multiboot {
        kernel: kernel(port, value),
        cmdline: String::new(),
        modules: Vec::new(),
    };
    Pc::new(config, boot).unwrap().run()
}

#[test]
fn port_92_resets() {
    assert_eq!(
        run(0x92, 0x03),
        PcExit::Reset("reset through port 0x92".into())
    );
}

#[test]
fn keyboard_controller_pulse_resets() {
    assert_eq!(
        run(0x64, 0xFE),
        PcExit::Reset("reset through the keyboard controller".into())
    );
}

#[test]
fn piix_reset_control_resets() {
    assert_eq!(
        run(0xCF9, 0x06),
        PcExit::Reset("reset through port 0xCF9".into())
    );
    // SRST clear: a soft reset (INIT) still restarts the processor.
    assert_eq!(
        run(0xCF9, 0x04),
        PcExit::Reset("reset through port 0xCF9".into())
    );
}

#[test]
fn writes_that_request_no_reset_do_not_reset() {
    // Port 0x92 with the reset bit clear, RCPU clear at 0xCF9, and an
    // i8042 pulse of bits that leave the reset line alone.
    for (port, value) in [(0x92, 0x02), (0xCF9, 0x02), (0x64, 0xFF)] {
        assert_eq!(
            run(port, value),
            PcExit::Deadlock,
            "{port:#x} <- {value:#x}"
        );
    }
}
