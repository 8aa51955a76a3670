//! The sequence generator: deterministic random instruction sequences over
//! every tested group (see [`super::forms`]), encoded with iced-x86.
//!
//! A sequence is built from *units*: an instruction with the setup moves it
//! needs (memory operands pointed into the data window, shift counts, bit
//! offsets, string pointers and counts), or a short forward branch over a
//! block of units, or a CALL/RET pair. The generator tracks ESP exactly
//! (only stack units move it) and which status flags are undefined after
//! each instruction: an instruction that reads an undefined flag first gets
//! a `CMP` that defines them all.

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, MemoryOperand, Mnemonic as M,
    OpCodeOperandKind as K, Register,
};

use super::flags;
use super::forms::{self, Form, Group};
use super::layout::*;
use super::rng::Rng;

/// One generated test: the initial state and the code.
#[derive(Clone, Debug)]
pub struct Case {
    /// EAX..EDI on entry.
    pub regs: [u32; 8],
    /// EFLAGS on entry.
    pub eflags: u32,
    /// The data window's initial bytes.
    pub data: Vec<u8>,
    /// The sequence (the runners append the way back).
    pub code: Vec<u8>,
    /// Each instruction's offset in `code` and the flags undefined on entry.
    pub insns: Vec<(u32, u32)>,
    /// Flags undefined at the end of the code.
    pub final_undefined: u32,
}

impl Case {
    /// Flags undefined where execution stopped (`offset` in the code).
    pub fn undefined_at(&self, offset: u32) -> u32 {
        if offset as usize == self.code.len() {
            return self.final_undefined;
        }
        self.insns
            .iter()
            .find(|(o, _)| *o == offset)
            .map_or(flags::STATUS, |(_, u)| *u)
    }
}

const R32: [Register; 8] = [
    Register::EAX,
    Register::ECX,
    Register::EDX,
    Register::EBX,
    Register::ESP,
    Register::EBP,
    Register::ESI,
    Register::EDI,
];
const R16: [Register; 8] = [
    Register::AX,
    Register::CX,
    Register::DX,
    Register::BX,
    Register::SP,
    Register::BP,
    Register::SI,
    Register::DI,
];
const R8: [Register; 8] = [
    Register::AL,
    Register::CL,
    Register::DL,
    Register::BL,
    Register::AH,
    Register::CH,
    Register::DH,
    Register::BH,
];
const ESP: usize = 4;

/// Builds sequences; holds the form tables.
#[derive(Debug)]
pub struct Generator {
    forms: Vec<Form>,
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

impl Generator {
    /// A generator over every supported form.
    pub fn new() -> Self {
        Generator {
            forms: forms::all(),
        }
    }

    /// How many table forms there are (for the run summary).
    pub fn form_count(&self) -> usize {
        self.forms.len()
    }

    /// Sequence `index` of `seed`: the same on every run and host.
    pub fn case(&self, seed: u64, index: u64) -> Case {
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F).rotate_left(17));
        let mut regs = [0u32; 8];
        for r in regs.iter_mut() {
            *r = rng.interesting();
        }
        regs[ESP] = DATA_BASE + STACK_START - 4 * rng.below(16);
        let eflags = FLAGS_FIXED | (rng.u32() & FLAGS_COMPARED);
        let mut data = vec![0u8; DATA_SIZE as usize];
        for chunk in data.chunks_mut(8) {
            let v = if rng.chance(10) { 0 } else { rng.next_u64() };
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        let mut b = Builder {
            g: self,
            rng,
            code: Vec::new(),
            insns: Vec::new(),
            undef: 0,
            esp: regs[ESP],
            in_block: false,
        };
        let units = b.rng.range(1, 12);
        for _ in 0..units {
            b.unit();
        }
        Case {
            regs,
            eflags,
            data,
            code: b.code,
            insns: b.insns,
            final_undefined: b.undef,
        }
    }
}

/// An operand for [`make`].
#[derive(Clone, Copy, Debug)]
enum Op {
    R(Register),
    M(MemoryOperand),
    I(i32),
}

/// Creates `code` with `ops` (the combinations the forms use).
fn make(code: Code, ops: &[Op]) -> Option<Instruction> {
    use Op::*;
    let r = match *ops {
        [] => Ok(Instruction::with(code)),
        [R(a)] => Instruction::with1(code, a),
        [M(a)] => Instruction::with1(code, a),
        [I(a)] => Instruction::with1(code, a),
        [R(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), M(b)] => Instruction::with2(code, a, b),
        [M(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), I(b)] => Instruction::with2(code, a, b),
        [M(a), I(b)] => Instruction::with2(code, a, b),
        [I(a), I(b)] => Instruction::with2(code, a, b),
        [R(a), R(b), I(c)] => Instruction::with3(code, a, b, c),
        [R(a), M(b), I(c)] => Instruction::with3(code, a, b, c),
        [M(a), R(b), I(c)] => Instruction::with3(code, a, b, c),
        [R(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        [M(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        _ => return None,
    };
    r.ok()
}

fn displ_size(d: i64, a16: bool) -> u32 {
    if d == 0 {
        0
    } else if (-128..=127).contains(&d) {
        1
    } else if a16 {
        2
    } else {
        4
    }
}

struct Builder<'a> {
    g: &'a Generator,
    rng: Rng,
    code: Vec<u8>,
    insns: Vec<(u32, u32)>,
    undef: u32,
    /// ESP's value at this point of the sequence.
    esp: u32,
    /// Inside a block a branch may skip: no stack units, no nested branches.
    in_block: bool,
}

impl Builder<'_> {
    fn ip(&self) -> u64 {
        u64::from(CODE_BASE) + self.code.len() as u64
    }

    /// Appends an instruction's bytes, defining flags first if it reads an
    /// undefined one, and records its flag effect.
    fn emit_bytes(&mut self, bytes: &[u8], count: Option<u32>) {
        let mut d = Decoder::with_ip(32, bytes, self.ip(), DecoderOptions::NONE);
        let insn = d.decode();
        if flags::read(&insn) & self.undef != 0 {
            self.define_flags();
        }
        self.insns.push((self.code.len() as u32, self.undef));
        self.code.extend_from_slice(bytes);
        let (defined, undefined) = flags::effect(&insn, count);
        self.undef = (self.undef & !defined) | undefined;
    }

    fn emit(&mut self, insn: &Instruction, count: Option<u32>) -> bool {
        let mut enc = Encoder::new(32);
        match enc.encode(insn, self.ip()) {
            Ok(_) => {
                let bytes = enc.take_buffer();
                self.emit_bytes(&bytes, count);
                true
            }
            Err(_) => false,
        }
    }

    /// `CMP r32, r32`: defines all six status flags.
    fn define_flags(&mut self) {
        let (a, b) = (self.rng.below(8) as usize, self.rng.below(8) as usize);
        if let Some(i) = make(Code::Cmp_rm32_r32, &[Op::R(R32[a]), Op::R(R32[b])]) {
            self.emit(&i, None);
        }
    }

    fn mov_imm(&mut self, reg: Register, value: u32) {
        let (code, v) = match reg.size() {
            1 => (Code::Mov_r8_imm8, value & 0xFF),
            2 => (Code::Mov_r16_imm16, value & 0xFFFF),
            _ => (Code::Mov_r32_imm32, value),
        };
        if let Some(i) = make(code, &[Op::R(reg), Op::I(v as i32)]) {
            self.emit(&i, None);
        }
    }

    /// A general register index other than ESP and those in `avoid`.
    fn free_reg(&mut self, avoid: &[usize]) -> Option<usize> {
        let free: Vec<usize> = (0..8).filter(|r| *r != ESP && !avoid.contains(r)).collect();
        (!free.is_empty()).then(|| self.rng.pick(&free))
    }

    /// A memory operand addressing window offset `off` (DS/SS flat, or FS
    /// based at the window), setting up the registers it uses (never those
    /// in `avoid`). `esp_adj` is what the instruction adds to ESP before it
    /// computes the address (POP m).
    fn mem_at(&mut self, off: u32, esp_adj: i32, avoid: &[usize]) -> MemoryOperand {
        let abs = i64::from(DATA_BASE + off);
        let disp = match self.rng.below(4) {
            0 => 0,
            1 => i64::from(self.rng.u32() as i8),
            2 => i64::from(self.rng.below(0x400)) - 0x200,
            _ => i64::from(self.rng.u32() as i32),
        };
        let none = Register::None;
        match self.rng.below(8) {
            1 | 2 => {
                let Some(b) = self.free_reg(avoid) else {
                    return MemoryOperand::with_displ(abs as u64, 4);
                };
                self.mov_imm(R32[b], (abs - disp) as u32);
                // Flat segments, named explicitly now and then (a write
                // through CS raises #GP).
                let seg = match self.rng.below(20) {
                    0 => Register::CS,
                    1 | 2 => Register::SS,
                    3 | 4 => Register::DS,
                    _ => none,
                };
                MemoryOperand::new(R32[b], none, 1, disp, displ_size(disp, false), false, seg)
            }
            3 => {
                let Some(b) = self.free_reg(avoid) else {
                    return MemoryOperand::with_displ(abs as u64, 4);
                };
                let mut av = avoid.to_vec();
                av.push(b);
                let Some(x) = self.free_reg(&av) else {
                    return MemoryOperand::with_displ(abs as u64, 4);
                };
                let scale = self.rng.pick(&[1u32, 2, 4, 8]);
                let xv = i64::from(self.rng.u32() as i32 >> self.rng.below(32));
                self.mov_imm(R32[x], xv as u32);
                self.mov_imm(R32[b], (abs - disp - xv * i64::from(scale)) as u32);
                MemoryOperand::new(
                    R32[b],
                    R32[x],
                    scale,
                    disp,
                    displ_size(disp, false),
                    false,
                    none,
                )
            }
            4 => {
                let Some(x) = self.free_reg(avoid) else {
                    return MemoryOperand::with_displ(abs as u64, 4);
                };
                let scale = self.rng.pick(&[1u32, 2, 4, 8]);
                let xv = i64::from(self.rng.below(0x100));
                self.mov_imm(R32[x], xv as u32);
                let d = abs - xv * i64::from(scale);
                MemoryOperand::new(none, R32[x], scale, d, 4, false, none)
            }
            5 => {
                let d = abs - i64::from(self.esp) - i64::from(esp_adj);
                MemoryOperand::new(Register::ESP, none, 1, d, displ_size(d, false), false, none)
            }
            6 => {
                let Some(b) = self.free_reg(avoid) else {
                    return MemoryOperand::with_displ(abs as u64, 4);
                };
                self.mov_imm(R32[b], (i64::from(off) - disp) as u32);
                let seg = if self.rng.chance(50) {
                    Register::FS
                } else {
                    Register::ES
                };
                MemoryOperand::new(R32[b], none, 1, disp, displ_size(disp, false), false, seg)
            }
            7 => self.mem16(off, avoid),
            _ => MemoryOperand::with_displ(abs as u64, 4),
        }
    }

    /// A 16-bit-addressing operand (FS-relative, so it reaches the window).
    fn mem16(&mut self, off: u32, avoid: &[usize]) -> MemoryOperand {
        const FORMS: [(Register, Register); 9] = [
            (Register::BX, Register::SI),
            (Register::BX, Register::DI),
            (Register::BP, Register::SI),
            (Register::BP, Register::DI),
            (Register::SI, Register::None),
            (Register::DI, Register::None),
            (Register::BP, Register::None),
            (Register::BX, Register::None),
            (Register::None, Register::None),
        ];
        let (b, x) = self.rng.pick(&FORMS);
        let idx = |r: Register| R16.iter().position(|&q| q == r);
        if [b, x]
            .iter()
            .filter_map(|&r| idx(r))
            .any(|i| avoid.contains(&i))
        {
            return MemoryOperand::with_displ(u64::from(DATA_BASE + off), 4);
        }
        let mut disp = if self.rng.chance(50) {
            i64::from(self.rng.u32() as i8)
        } else {
            i64::from(self.rng.u32() as u16)
        };
        if b == Register::None {
            disp = i64::from(off);
            return MemoryOperand::new(b, x, 1, disp, 2, false, Register::FS);
        }
        if b == Register::BP && x == Register::None && disp == 0 {
            disp = 1;
        }
        let mut rest = i64::from(off) - disp;
        if x != Register::None {
            let xv = i64::from(self.rng.u32() as u16);
            self.mov_imm(x, xv as u32);
            rest -= xv;
        }
        self.mov_imm(b, (rest & 0xFFFF) as u32);
        let disp = if (-128..=127).contains(&disp) {
            disp
        } else {
            disp & 0xFFFF
        };
        let size = if disp == 0 {
            0
        } else if (-128..=127).contains(&disp) {
            1
        } else {
            2
        };
        MemoryOperand::new(b, x, 1, disp, size, false, Register::FS)
    }

    /// A random operand for LEA (never accessed).
    fn lea_mem(&mut self) -> MemoryOperand {
        if self.rng.chance(25) {
            let (b, x) = self.rng.pick(&[
                (Register::BX, Register::SI),
                (Register::BP, Register::DI),
                (Register::SI, Register::None),
                (Register::BX, Register::None),
            ]);
            let d = i64::from(self.rng.u32() as i8);
            return MemoryOperand::new(b, x, 1, d, displ_size(d, true), false, Register::None);
        }
        let b = R32[self.rng.below(8) as usize];
        let x = [Register::None, R32[self.rng.range(0, 7) as usize]][self.rng.below(2) as usize];
        let x = if x == Register::ESP {
            Register::None
        } else {
            x
        };
        let d = i64::from(self.rng.interesting() as i32);
        let scale = self.rng.pick(&[1u32, 2, 4, 8]);
        MemoryOperand::new(b, x, scale, d, displ_size(d, false), false, Register::None)
    }

    fn unit(&mut self) {
        let pick = self.rng.below(100);
        match pick {
            0..=5 if !self.in_block => self.branch_unit(),
            6..=8 if !self.in_block => self.call_unit(),
            9..=14 if !self.in_block => self.stack_unit(),
            15..=20 => self.string_unit(),
            21..=22 => self.xlat_unit(),
            _ => {
                let group = match self.rng.below(84) {
                    0..=14 => Group::Data,
                    15..=34 => Group::Alu,
                    35..=49 => Group::Shift,
                    50..=59 => Group::MulDiv,
                    60..=67 => Group::Bcd,
                    68..=77 => Group::Bit,
                    _ if !self.in_block => Group::Stack,
                    _ => Group::Alu,
                };
                let candidates: Vec<usize> = self
                    .g
                    .forms
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.group == group)
                    .map(|(i, _)| i)
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let i = self.rng.pick(&candidates);
                self.table_unit(i);
            }
        }
    }

    fn count_for(&mut self, width: u32, double16: bool) -> u32 {
        if double16 {
            return self.rng.below(17) + if self.rng.chance(20) { 32 } else { 0 };
        }
        match self.rng.below(8) {
            0 => 0,
            1 | 2 => 1,
            3 => self.rng.pick(&[width - 1, width, width + 1, 31, 32, 33]),
            4 => self.rng.u32() & 0xFF,
            _ => self.rng.range(2, 31),
        }
    }

    /// One instruction from the form table with its setup.
    fn table_unit(&mut self, index: usize) {
        let form = &self.g.forms[index];
        let code = form.code;
        let kinds = form.kinds.clone();
        let m = code.mnemonic();
        let stack = form.group == Group::Stack;
        let opsize = code.op_code().operand_size().max(16) / 8;
        if stack {
            let delta = if m == M::Push {
                -(opsize as i64)
            } else {
                opsize as i64
            };
            let new = i64::from(self.esp) + delta;
            if new < i64::from(DATA_BASE + STACK_LO) || new > i64::from(DATA_BASE + STACK_HI) {
                return;
            }
        }
        // Registers, immediates; memory filled in after value setups are known.
        let mut ops: Vec<Option<Op>> = Vec::new();
        let mut mem_slot = None;
        let mut mem_size = 0;
        for (n, &k) in kinds.iter().enumerate() {
            let allow_esp = stack && m == M::Push;
            let reg_idx = |rng: &mut Rng| loop {
                let r = rng.below(8) as usize;
                if r != ESP || allow_esp {
                    break r;
                }
            };
            let op = match k {
                K::r8_reg | K::r8_opcode => Some(Op::R(R8[self.rng.below(8) as usize])),
                K::r16_reg | K::r16_rm | K::r16_opcode => Some(Op::R(R16[reg_idx(&mut self.rng)])),
                K::r32_reg | K::r32_rm | K::r32_opcode => Some(Op::R(R32[reg_idx(&mut self.rng)])),
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem if self.rng.chance(50) => {
                    let r = reg_idx(&mut self.rng);
                    Some(Op::R(match k {
                        K::r8_or_mem => R8[self.rng.below(8) as usize],
                        K::r16_or_mem => R16[r],
                        _ => R32[r],
                    }))
                }
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::mem | K::mem_offs => {
                    mem_slot = Some(n);
                    mem_size = match k {
                        K::r8_or_mem => 1,
                        K::r16_or_mem => 2,
                        K::r32_or_mem => 4,
                        K::mem if m == M::Lea => 0,
                        K::mem => 8,
                        _ => match kinds.iter().find(|&&o| matches!(o, K::al | K::ax | K::eax)) {
                            Some(K::al) => 1,
                            Some(K::ax) => 2,
                            _ => 4,
                        },
                    };
                    None
                }
                K::al => Some(Op::R(Register::AL)),
                K::ax => Some(Op::R(Register::AX)),
                K::eax => Some(Op::R(Register::EAX)),
                K::cl => Some(Op::R(Register::CL)),
                K::imm8_const_1 => Some(Op::I(1)),
                K::imm8 if self.rng.chance(10) => {
                    Some(Op::I(self.rng.pick(&[0, 1, 10, 16, 0x7F, 0x80, 0xFF])))
                }
                K::imm8 => Some(Op::I((self.rng.u32() & 0xFF) as i32)),
                K::imm8sex16 | K::imm8sex32 => Some(Op::I(i32::from(self.rng.u32() as i8))),
                K::imm16 => Some(Op::I((self.rng.u32() & 0xFFFF) as i32)),
                _ => Some(Op::I(self.rng.interesting() as i32)),
            };
            ops.push(op);
        }
        let width = match kinds.first() {
            Some(K::r8_or_mem | K::r8_reg | K::al) => 8,
            Some(K::r16_or_mem | K::r16_reg | K::ax | K::r16_opcode | K::r16_rm) => 16,
            _ => 32,
        };
        // Value setups: which registers they need, and the values.
        let mut avoid: Vec<usize> = Vec::new();
        let mut sets: Vec<(Register, u32)> = Vec::new();
        let mut count = None;
        let mut mem_off = None;
        let shift = matches!(
            m,
            M::Shl
                | M::Sal
                | M::Shr
                | M::Sar
                | M::Rol
                | M::Ror
                | M::Rcl
                | M::Rcr
                | M::Shld
                | M::Shrd
        );
        if shift {
            let double16 = matches!(m, M::Shld | M::Shrd) && width == 16;
            let last = ops.len() - 1;
            match ops[last] {
                Some(Op::R(Register::CL)) if double16 || self.rng.chance(90) => {
                    let c = self.count_for(width, double16);
                    avoid.push(1);
                    sets.push((Register::CL, c));
                    count = Some(c);
                }
                Some(Op::I(_)) if kinds[last] == K::imm8 => {
                    ops[last] = Some(Op::I(self.count_for(width, double16) as i32));
                }
                _ => {}
            }
        }
        if matches!(m, M::Div | M::Idiv) && self.rng.chance(60) {
            avoid.extend([0, 2]);
            let (hi, ext) = match width {
                8 => (Register::AH, Code::Cbw),
                16 => (Register::DX, Code::Cwd),
                _ => (Register::EDX, Code::Cdq),
            };
            if m == M::Div {
                sets.push((hi, 0));
            } else {
                sets.push((Register::None, ext as u32));
            }
        }
        if matches!(m, M::Bt | M::Bts | M::Btr | M::Btc) && mem_slot == Some(0) {
            if let Some(Op::R(r)) = ops[1] {
                let bytes = width / 8;
                let base = self.rng.range(0x100, DATA_AREA_END - 0x100) & !(bytes - 1);
                let lo = -((base / bytes) as i64);
                let hi = ((DATA_AREA_END - bytes - base) / bytes) as i64;
                let units = lo + i64::from(self.rng.below((hi - lo + 1) as u32));
                let bit = i64::from(width) * units + i64::from(self.rng.below(width));
                let v = if width == 16 {
                    (self.rng.u32() & 0xFFFF_0000) | (bit as u32 & 0xFFFF)
                } else {
                    bit as u32
                };
                let ri = R32
                    .iter()
                    .position(|&q| q == r.full_register32())
                    .unwrap_or(0);
                avoid.push(ri);
                sets.push((r, v));
                mem_off = Some(base);
            }
        }
        if let Some(n) = mem_slot {
            let mem = if mem_size == 0 {
                self.lea_mem()
            } else {
                let off = mem_off.unwrap_or_else(|| self.rng.range(0, DATA_AREA_END - mem_size));
                let adj = if m == M::Pop { opsize as i32 } else { 0 };
                let mem = self.mem_at(off, adj, &avoid);
                if kinds[n] == K::mem_offs {
                    MemoryOperand::with_displ(u64::from(DATA_BASE + off), 4)
                } else {
                    mem
                }
            };
            ops[n] = Some(Op::M(mem));
        }
        for (r, v) in sets {
            if r == Register::None {
                let ext = match v {
                    x if x == Code::Cbw as u32 => Code::Cbw,
                    x if x == Code::Cwd as u32 => Code::Cwd,
                    _ => Code::Cdq,
                };
                self.emit(&Instruction::with(ext), None);
            } else {
                self.mov_imm(r, v);
            }
        }
        let ops: Vec<Op> = ops.into_iter().flatten().collect();
        let Some(mut insn) = make(code, &ops) else {
            return;
        };
        // LOCK where it is legal (memory destination), and rarely where it
        // is not (a register destination: #UD).
        if code.op_code().can_use_lock_prefix() {
            let memory_dest = mem_slot == Some(0);
            if (memory_dest && self.rng.chance(15)) || (!memory_dest && self.rng.chance(2)) {
                insn.set_has_lock_prefix(true);
            }
        }
        if self.emit(&insn, count) && stack {
            if m == M::Push {
                self.esp -= opsize;
            } else {
                self.esp += opsize;
            }
        }
    }

    /// A string instruction with bounded REP count, either direction.
    fn string_unit(&mut self) {
        let (op, src, dst) = self.rng.pick(&[
            (0xA4u8, true, true), // MOVS
            (0xA6, true, true),   // CMPS
            (0xAA, false, true),  // STOS
            (0xAC, true, false),  // LODS
            (0xAE, false, true),  // SCAS
        ]);
        let size = self.rng.pick(&[1u32, 2, 4]);
        let a16 = self.rng.chance(25);
        let compare = op == 0xA6 || op == 0xAE;
        let rep = match self.rng.below(3) {
            0 => None,
            1 => Some(0xF3u8),
            _ => Some(if compare { 0xF2 } else { 0xF3 }),
        };
        let n = if rep.is_some() { self.rng.below(13) } else { 1 };
        let df = self.rng.chance(50);
        let fs = a16 || self.rng.chance(30);
        let span = n.max(1) * size;
        let s = self.rng.range(span + 8, DATA_AREA_END - span - 8);
        let d = self.rng.range(span + 8, DATA_AREA_END - span - 8);
        self.emit_bytes(&[if df { 0xFD } else { 0xFC }], None);
        if src {
            let v = if fs { s } else { DATA_BASE + s };
            self.mov_imm(if a16 { Register::SI } else { Register::ESI }, v);
        }
        if dst {
            self.mov_imm(if a16 { Register::DI } else { Register::EDI }, d);
        }
        if rep.is_some() {
            self.mov_imm(if a16 { Register::CX } else { Register::ECX }, n);
        }
        let mut bytes = Vec::new();
        bytes.extend(rep);
        if size == 2 {
            bytes.push(0x66);
        }
        if a16 {
            bytes.push(0x67);
        }
        if src && fs {
            bytes.push(0x64);
        }
        bytes.push(op + u8::from(size > 1));
        self.emit_bytes(&bytes, rep.map(|_| n));
    }

    /// XLAT through DS:EBX, FS:EBX or FS:BX.
    fn xlat_unit(&mut self) {
        let off = self.rng.range(0, DATA_AREA_END - 256);
        match self.rng.below(3) {
            0 => {
                self.mov_imm(Register::EBX, DATA_BASE + off);
                self.emit_bytes(&[0xD7], None);
            }
            1 => {
                self.mov_imm(Register::EBX, off);
                self.emit_bytes(&[0x64, 0xD7], None);
            }
            _ => {
                self.mov_imm(Register::BX, off);
                self.emit_bytes(&[0x64, 0x67, 0xD7], None);
            }
        }
    }

    /// A block of one or two units a branch may skip; returns its length.
    fn block(&mut self, limit: usize) -> usize {
        let start = self.code.len();
        let saved = self.in_block;
        self.in_block = true;
        for _ in 0..self.rng.range(1, 2) {
            let mark = (self.code.len(), self.insns.len(), self.undef);
            self.unit();
            if self.code.len() - start > limit {
                self.code.truncate(mark.0);
                self.insns.truncate(mark.1);
                self.undef = mark.2;
                break;
            }
        }
        self.in_block = saved;
        self.code.len() - start
    }

    /// A forward Jcc, JMP, LOOPcc or JECXZ/JCXZ over a block.
    fn branch_unit(&mut self) {
        let cc = self.rng.below(16) as u8;
        let (bytes, rel32): (Vec<u8>, bool) = match self.rng.below(6) {
            0 | 1 => (vec![0x70 + cc, 0], false),
            2 => (vec![0x0F, 0x80 + cc, 0, 0, 0, 0], true),
            3 => (vec![0xEB, 0], false),
            _ => {
                let a16 = self.rng.chance(30);
                if self.rng.chance(60) {
                    let n = self.rng.below(3);
                    self.mov_imm(if a16 { Register::CX } else { Register::ECX }, n);
                }
                let op = self.rng.pick(&[0xE0u8, 0xE1, 0xE2, 0xE3]);
                (if a16 { vec![0x67, op, 0] } else { vec![op, 0] }, false)
            }
        };
        self.emit_bytes(&bytes, None);
        let at = self.code.len();
        let taken_undef = self.undef;
        let len = self.block(if rel32 { 0x1000 } else { 127 });
        if rel32 {
            self.code[at - 4..at].copy_from_slice(&(len as u32).to_le_bytes());
        } else {
            self.code[at - 1] = len as u8;
        }
        self.undef |= taken_undef;
    }

    /// `CALL next; POP r32`, or `CALL f; JMP over; f: block; RET [n]; over:`.
    fn call_unit(&mut self) {
        if self.esp < DATA_BASE + STACK_LO + 16 {
            return;
        }
        if self.rng.chance(30) {
            self.emit_bytes(&[0xE8, 0, 0, 0, 0], None);
            let r = self.free_reg(&[]).unwrap_or(0) as u8;
            self.emit_bytes(&[0x58 + r], None);
            return;
        }
        self.emit_bytes(&[0xE8, 2, 0, 0, 0], None);
        self.emit_bytes(&[0xEB, 0], None);
        let at = self.code.len();
        self.esp -= 4;
        let len = self.block(100);
        let extra = if self.rng.chance(30) {
            self.rng.pick(&[0u16, 2, 4, 8])
        } else {
            0
        };
        let extra = if self.esp + 4 + u32::from(extra) > DATA_BASE + STACK_HI {
            0
        } else {
            extra
        };
        if extra == 0 && self.rng.chance(70) {
            self.emit_bytes(&[0xC3], None);
        } else {
            let [lo, hi] = extra.to_le_bytes();
            self.emit_bytes(&[0xC2, lo, hi], None);
        }
        self.code[at - 1] =
            (len + 1 + usize::from(self.code[self.code.len() - 1] != 0xC3) * 2) as u8;
        self.esp += 4 + u32::from(extra);
    }

    /// PUSHA/POPA, PUSHF/POPF, ENTER, LEAVE (16- and 32-bit).
    fn stack_unit(&mut self) {
        let o16 = self.rng.chance(30);
        let o = if o16 { 2 } else { 4 };
        let p: &[u8] = if o16 { &[0x66] } else { &[] };
        let lo = DATA_BASE + STACK_LO;
        let hi = DATA_BASE + STACK_HI;
        match self.rng.below(6) {
            0 if self.esp >= lo + 8 * o => {
                self.emit_bytes(&[p, &[0x60]].concat(), None);
                self.esp -= 8 * o;
            }
            1 if self.esp + 8 * o <= hi => {
                self.emit_bytes(&[p, &[0x61]].concat(), None);
                self.esp += 8 * o;
            }
            2 if self.esp >= lo + o => {
                self.emit_bytes(&[p, &[0x9C]].concat(), None);
                self.esp -= o;
            }
            3 => {
                let v = FLAGS_FIXED | (self.rng.u32() & FLAGS_COMPARED);
                if o16 {
                    let [a, b, ..] = v.to_le_bytes();
                    self.emit_bytes(&[0x66, 0x68, a, b], None);
                    self.emit_bytes(&[0x66, 0x9D], None);
                } else {
                    let [a, b, c, d] = v.to_le_bytes();
                    self.emit_bytes(&[0x68, a, b, c, d], None);
                    self.emit_bytes(&[0x9D], None);
                }
            }
            4 => {
                let level = if self.rng.chance(50) {
                    0
                } else {
                    self.rng.range(1, 3)
                };
                let size = self.rng.below(48);
                let need = o * (1 + level) + size;
                if self.esp < lo + need {
                    return;
                }
                if level > 0 {
                    let off = self.rng.range(0x40, DATA_AREA_END - 8);
                    self.mov_imm(Register::EBP, DATA_BASE + off);
                }
                let [s0, s1] = (size as u16).to_le_bytes();
                self.emit_bytes(&[p, &[0xC8, s0, s1, level as u8]].concat(), None);
                self.esp -= need;
            }
            _ => {
                let target = self.rng.range(STACK_LO, STACK_HI - 8) & !1;
                self.mov_imm(Register::EBP, DATA_BASE + target);
                self.emit_bytes(&[p, &[0xC9]].concat(), None);
                self.esp = DATA_BASE + target + o;
            }
        }
    }
}
