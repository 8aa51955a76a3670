//! The built-in demo guest that `oxide86 run` boots when no guest is
//! given: a small bare-metal Multiboot program, assembled here with
//! iced-x86's code assembler, that prints the CPU's identity, the memory
//! the boot loader reported and the results of a quick self-test (integer,
//! string and x87 instructions) on COM1, then powers the machine off
//! through ACPI.

use iced_x86::code_asm::*;

/// Where the demo is loaded (and its Multiboot header's addresses).
const LOAD_AT: u32 = 0x0010_0000;
/// COM1's transmit holding register and line status register.
const COM1: u16 = 0x3F8;
const COM1_LSR: u16 = COM1 + 5;
/// The PIIX4 PM1a control register (ACPI S5 with SLP_EN).
const PM1A_CNT: u16 = 0x604;

/// The demo's data (strings, buffers, constants) sits at a fixed address
/// after the code, so code can name it with plain 32-bit immediates.
const DATA_AT: u32 = LOAD_AT + 0x1000;

/// Builds the data block and hands out the address of each item.
#[derive(Default)]
struct Data {
    bytes: Vec<u8>,
}

impl Data {
    fn add(&mut self, b: &[u8]) -> u32 {
        let at = DATA_AT + self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        at
    }
    fn text(&mut self, s: &str) -> u32 {
        let at = self.add(s.as_bytes());
        self.bytes.push(0);
        at
    }
}

/// Assembles the demo guest as a Multiboot a.out-kludge image.
pub fn image() -> anyhow::Result<Vec<u8>> {
    let mut d = Data::default();
    let banner = d.text("oxide86 demo guest: a bare-metal program running on the emulated PC\r\n");
    let vendor_msg = d.text("CPU vendor: ");
    let brand_msg = d.text("\r\nCPU brand:  ");
    let mem_msg = d.text("\r\nmemory:     ");
    let mib_msg = d.text(" MiB\r\n");
    let test_int = d.text("self-test integer loop ....... ");
    let test_str = d.text("self-test string copy ........ ");
    let test_fpu = d.text("self-test x87 sqrt ........... ");
    let ok_msg = d.text("ok\r\n");
    let fail_msg = d.text("FAILED\r\n");
    let bye_msg = d.text("demo finished; powering off through ACPI\r\n");
    let two = d.add(&2.0f64.to_le_bytes());
    let scratch = d.add(&[0; 8]);
    let buf = d.add(&[0; 64]);
    let buf2 = d.add(&[0; 64]);

    let mut a = CodeAssembler::new(32)?;
    let mut entry = a.create_label();
    let mut end = a.create_label();
    let mut putc = a.create_label();
    let mut puts = a.create_label();
    let mut putdec = a.create_label();

    // Multiboot header (a.out kludge: flat image loaded at LOAD_AT).
    let flags: u32 = (1 << 16) | (1 << 1);
    let magic: u32 = 0x1BAD_B002;
    for v in [
        magic,
        flags,
        0u32.wrapping_sub(magic.wrapping_add(flags)),
        LOAD_AT,
        LOAD_AT,
        0,
        0,
        LOAD_AT + 0x40,
    ] {
        a.dd(&[v])?;
    }
    a.db(&[0; 0x20])?; // pad the header to 0x40
    a.set_label(&mut entry)?;
    a.mov(esp, 0x0009_0000)?;
    a.mov(ebp, ebx)?; // Multiboot information
    a.mov(esi, banner)?;
    a.call(puts)?;

    // CPUID vendor string.
    a.mov(esi, vendor_msg)?;
    a.call(puts)?;
    a.xor(eax, eax)?;
    a.cpuid()?;
    a.mov(edi, buf)?;
    a.mov(dword_ptr(edi), ebx)?;
    a.mov(dword_ptr(edi + 4), edx)?;
    a.mov(dword_ptr(edi + 8), ecx)?;
    a.mov(byte_ptr(edi + 12), 0)?;
    a.mov(esi, edi)?;
    a.call(puts)?;
    // Brand string from leaves 0x80000002-4.
    a.mov(esi, brand_msg)?;
    a.call(puts)?;
    a.mov(edi, buf)?;
    for leaf in 0..3u32 {
        a.mov(eax, 0x8000_0002u32 + leaf)?;
        a.cpuid()?;
        a.mov(dword_ptr(edi + 16 * leaf), eax)?;
        a.mov(dword_ptr(edi + 16 * leaf + 4), ebx)?;
        a.mov(dword_ptr(edi + 16 * leaf + 8), ecx)?;
        a.mov(dword_ptr(edi + 16 * leaf + 12), edx)?;
    }
    a.mov(byte_ptr(edi + 48), 0)?;
    a.mov(esi, edi)?;
    a.call(puts)?;
    // Memory from the Multiboot information (mem_upper KiB above 1 MiB).
    a.mov(esi, mem_msg)?;
    a.call(puts)?;
    a.mov(eax, dword_ptr(ebp + 8))?;
    a.add(eax, 1024)?;
    a.shr(eax, 10)?;
    a.call(putdec)?;
    a.mov(esi, mib_msg)?;
    a.call(puts)?;

    // Self-test 1: integer arithmetic, sum 1..1000 with a loop = 500500.
    let mut int_loop = a.create_label();
    a.mov(esi, test_int)?;
    a.call(puts)?;
    a.xor(eax, eax)?;
    a.mov(ecx, 1000)?;
    a.set_label(&mut int_loop)?;
    a.add(eax, ecx)?;
    a.loop_(int_loop)?;
    a.cmp(eax, 500_500)?;
    report(&mut a, ok_msg, fail_msg, puts)?;
    // Self-test 2: REP MOVSB copies a string and REPE CMPSB agrees.
    a.mov(esi, test_str)?;
    a.call(puts)?;
    a.mov(esi, banner)?;
    a.mov(edi, buf2)?;
    a.mov(ecx, 16)?;
    a.cld()?;
    a.rep().movsb()?;
    a.mov(esi, banner)?;
    a.mov(edi, buf2)?;
    a.mov(ecx, 16)?;
    a.repe().cmpsb()?;
    report(&mut a, ok_msg, fail_msg, puts)?;
    // Self-test 3: x87, sqrt(2) squared rounds back to 2 exactly in
    // double precision after FSTP to a 64-bit float.
    a.mov(esi, test_fpu)?;
    a.call(puts)?;
    a.fninit()?;
    a.fld(qword_ptr(two))?;
    a.fsqrt()?;
    a.fmul_2(st0, st0)?;
    a.fstp(qword_ptr(scratch))?; // round the 80-bit square to a double
    a.fld(qword_ptr(scratch))?;
    a.fld(qword_ptr(two))?;
    a.fcomip(st0, st1)?;
    a.fstp(st0)?;
    report(&mut a, ok_msg, fail_msg, puts)?;

    a.mov(esi, bye_msg)?;
    a.call(puts)?;
    // ACPI S5: SLP_TYP = 0, SLP_EN.
    a.mov(dx, PM1A_CNT as u32)?;
    a.mov(ax, 0x2000u32)?;
    a.out(dx, ax)?;
    a.set_label(&mut end)?;
    a.cli()?;
    a.hlt()?;
    a.jmp(end)?;

    // putc: AL to COM1, waiting (boundedly) for THR empty.
    let mut wait = a.create_label();
    let mut send = a.create_label();
    a.set_label(&mut putc)?;
    a.push(edx)?;
    a.push(ecx)?;
    a.push(eax)?;
    a.mov(ecx, 100_000)?;
    a.mov(dx, COM1_LSR as u32)?;
    a.set_label(&mut wait)?;
    a.in_(al, dx)?;
    a.test(al, 0x20)?;
    a.jnz(send)?;
    a.loop_(wait)?;
    a.set_label(&mut send)?;
    a.pop(eax)?;
    a.mov(dx, COM1 as u32)?;
    a.out(dx, al)?;
    a.pop(ecx)?;
    a.pop(edx)?;
    a.ret()?;
    // puts: the NUL-terminated string at ESI.
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut puts)?;
    a.push(esi)?;
    a.push(eax)?;
    a.set_label(&mut next)?;
    a.lodsb()?;
    a.test(al, al)?;
    a.jz(done)?;
    a.call(putc)?;
    a.jmp(next)?;
    a.set_label(&mut done)?;
    a.pop(eax)?;
    a.pop(esi)?;
    a.ret()?;
    // putdec: EAX in decimal.
    let mut divide = a.create_label();
    let mut print = a.create_label();
    a.set_label(&mut putdec)?;
    a.pushad()?;
    a.mov(ebx, 10)?;
    a.xor(ecx, ecx)?;
    a.set_label(&mut divide)?;
    a.xor(edx, edx)?;
    a.div(ebx)?;
    a.push(edx)?;
    a.inc(ecx)?;
    a.test(eax, eax)?;
    a.jnz(divide)?;
    a.set_label(&mut print)?;
    a.pop(eax)?;
    a.add(al, b'0' as u32)?;
    a.call(putc)?;
    a.loop_(print)?;
    a.popad()?;
    a.ret()?;

    let mut image = a.assemble(u64::from(LOAD_AT))?;
    if image.len() > (DATA_AT - LOAD_AT) as usize {
        anyhow::bail!("the demo's code overran its data block");
    }
    image.resize((DATA_AT - LOAD_AT) as usize, 0);
    image.extend_from_slice(&d.bytes);
    Ok(image)
}

/// Prints "ok" when ZF is set, else "FAILED".
fn report(a: &mut CodeAssembler, ok: u32, fail: u32, puts: CodeLabel) -> Result<(), IcedError> {
    let mut bad = a.create_label();
    let mut out = a.create_label();
    a.jnz(bad)?;
    a.lea(esi, ptr(ok))?;
    a.jmp(out)?;
    a.set_label(&mut bad)?;
    a.lea(esi, ptr(fail))?;
    a.set_label(&mut out)?;
    a.call(puts)
}
