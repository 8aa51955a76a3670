//! Instruction coverage: which encodings a CPU model must execute, and which
//! of them the interpreter implements.
//!
//! The required set is every iced-x86 [`Code`] with a legacy encoding that
//! is valid in 16- or 32-bit mode and whose `cpuid_features()` all lie in
//! the model's feature set ([`model_features`]). A code counts as
//! implemented only if one concrete instance of it, executed on a fresh
//! CPU, reaches a handler: `Cpu::unimplemented` stays `None`. An
//! architectural fault (#UD, #GP, #DE, ...) raised by the handler is fine.
//!
//! Instances come from brute-force decoding ([`find_instances`]): every
//! one-byte and `0F xx` opcode with every ModRM byte, with and without
//! operand-size, address-size and REP prefixes, followed by zero bytes. A
//! 16-bit instance runs in real mode, a 32-bit one in flat 32-bit
//! protected mode; a code valid in both modes must pass in both.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use iced_x86::{Code, CpuidFeature as F, Decoder, DecoderOptions, EncodingKind, Mnemonic as M};
use oxide86_cpu::{decode, Cpu, CpuModel, FlatRam};

use crate::setup;

/// Which instructions to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Everything the model executes.
    #[default]
    All,
    /// Everything except the system instructions of the protected-mode
    /// system ISA ([`is_system`]).
    User,
}

impl Scope {
    /// Parses `user` or `all`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Scope::User),
            "all" => Some(Scope::All),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The CPU model whose required set is checked.
    pub model: CpuModel,
    /// Which instructions count.
    pub scope: Scope,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Required codes whose instance reached a handler.
    pub implemented: usize,
    /// Required codes that did not (or have no instance), in `Code` order.
    pub missing: Vec<Code>,
}

/// The CPUID feature classes (iced-x86's `CpuidFeature`) a model executes.
///
/// The 8086 and 286 sets include their `*_ONLY` classes (POP CS, LOADALL);
/// the family-6 set is the 8086 through 486 integer ISA, x87, CPUID, TSC,
/// MSR, CX8, CMOV, SEP, FXSR, PAUSE and the multi-byte NOPs.
pub fn model_features(model: CpuModel) -> &'static [F] {
    match model {
        CpuModel::I8086 => &[F::INTEL8086, F::INTEL8086_ONLY],
        CpuModel::I286 => &[F::INTEL8086, F::INTEL186, F::INTEL286, F::INTEL286_ONLY],
        CpuModel::P6 => &[
            F::INTEL8086,
            F::INTEL186,
            F::INTEL286,
            F::INTEL386,
            F::INTEL486,
            F::FPU,
            F::FPU287,
            F::FPU387,
            F::CPUID,
            F::TSC,
            F::MSR,
            F::CX8,
            F::CMOV,
            F::SEP,
            F::FXSR,
            F::PAUSE,
            F::MULTIBYTENOP,
        ],
    }
}

/// The system instructions that `--scope user` leaves out: descriptor
/// tables, task register, segment checks, control/debug registers, cache
/// and TLB control, MSRs and fast system calls (Intel SDM Vol. 3A, 2.8
/// "System Instruction Summary").
pub fn is_system(code: Code) -> bool {
    matches!(
        code.mnemonic(),
        M::Lgdt
            | M::Lidt
            | M::Lldt
            | M::Ltr
            | M::Sgdt
            | M::Sidt
            | M::Sldt
            | M::Str
            | M::Lar
            | M::Lsl
            | M::Verr
            | M::Verw
            | M::Arpl
            | M::Lmsw
            | M::Smsw
            | M::Clts
            | M::Invd
            | M::Wbinvd
            | M::Invlpg
            | M::Rdmsr
            | M::Wrmsr
            | M::Sysenter
            | M::Sysexit
    ) || is_control_or_debug_mov(code)
}

/// MOV to or from a control or debug register.
fn is_control_or_debug_mov(code: Code) -> bool {
    code.mnemonic() == M::Mov && {
        let s = code.op_code().instruction_string();
        s.contains("cr") || s.contains("dr")
    }
}

/// Whether `code` is in `model`'s required set: a legacy-encoded
/// instruction valid in 16- or 32-bit mode whose CPUID features all lie in
/// the model's set, decoded by Intel processors without a special decoder
/// option (this leaves out AMD's ModRM-less UD0); before the 386, only
/// 16-bit operand and address sizes (no `66 90` NOPD). The 8086's POP CS is
/// in its set. The waiting x87 forms (FINIT = WAIT + FNINIT, ...) are in
/// too: they execute as two instructions.
pub fn is_required(code: Code, model: CpuModel) -> bool {
    let info = code.op_code();
    let features = model_features(model);
    info.is_instruction()
        && info.encoding() == EncodingKind::Legacy
        && (info.mode16() || info.mode32())
        && (info.intel_decoder16() || info.intel_decoder32() || code == Code::Popw_CS)
        && info.decoder_option() == DecoderOptions::NONE
        && code.cpuid_features().iter().all(|f| features.contains(f))
        && (model.is_386_or_later() || (info.operand_size() != 32 && info.address_size() != 32))
}

/// The model's required codes in `scope`, in `Code` order.
pub fn required_set(model: CpuModel, scope: Scope) -> Vec<Code> {
    Code::values()
        .filter(|&c| is_required(c, model) && (scope == Scope::All || !is_system(c)))
        .collect()
}

/// The bytes of the first decoding found of one code, as 16-bit code in
/// `.0` and as 32-bit code in `.1`.
pub type Instance = (Option<Vec<u8>>, Option<Vec<u8>>);

/// One [`Instance`] per code.
pub type Instances = BTreeMap<Code, Instance>;

/// Prefix combinations tried, in order (first instance found wins).
const PREFIXES: &[&[u8]] = &[
    &[],
    &[0x66],
    &[0x67],
    &[0x66, 0x67],
    &[0xF3],
    &[0xF2],
    &[0x66, 0xF3],
    &[0x66, 0xF2],
    &[0x67, 0xF3],
    &[0x66, 0x67, 0xF3],
];

/// Finds an instance of every decodable code by brute force (see the
/// module documentation).
pub fn find_instances() -> Instances {
    let mut found = Instances::new();
    for bitness in [16u32, 32] {
        for prefix in PREFIXES {
            for opcode in 0..512u32 {
                for modrm in 0..=255u8 {
                    let mut bytes = prefix.to_vec();
                    if opcode >= 256 {
                        bytes.push(0x0F);
                    }
                    bytes.push(opcode as u8);
                    bytes.push(modrm);
                    bytes.extend_from_slice(&[0; 8]);
                    let mut decoder = Decoder::new(bitness, &bytes, DecoderOptions::NONE);
                    let insn = decoder.decode();
                    if insn.is_invalid() {
                        continue;
                    }
                    bytes.truncate(insn.len());
                    let slot = found.entry(insn.code()).or_default();
                    let entry = if bitness == 16 {
                        &mut slot.0
                    } else {
                        &mut slot.1
                    };
                    if entry.is_none() {
                        *entry = Some(bytes);
                    }
                }
            }
        }
    }
    // The 8086 decodes 0F as POP CS (iced has no option for it).
    found.insert(Code::Popw_CS, (Some(vec![0x0F]), None));
    // A waiting x87 form is WAIT (9B) followed by its no-wait twin.
    for code in Code::values().filter(|c| c.op_code().fwait()) {
        if let Some((a, b)) = no_wait_twin(code).and_then(|twin| found.get(&twin)) {
            let with_wait = |v: &Option<Vec<u8>>| v.as_ref().map(|v| [&[0x9B][..], v].concat());
            let pair = (with_wait(a), with_wait(b));
            found.insert(code, pair);
        }
    }
    found
}

/// The no-wait form of a waiting x87 code (`Fstenv_m14byte` ->
/// `Fnstenv_m14byte`), found by iced's naming.
fn no_wait_twin(code: Code) -> Option<Code> {
    let name = format!("{code:?}");
    let twin = format!("Fn{}", name.strip_prefix('F')?);
    Code::values().find(|c| format!("{c:?}") == twin)
}

/// Where instances are loaded, and the value of every pointer register
/// (so memory operands land in RAM).
const CODE_ADDR: u32 = 0x1000;
const POINTER: u32 = 0x2000;
const STACK: u32 = 0x8000;

/// Executes `bytes` as one instruction on a fresh CPU (real mode for
/// 16-bit code, flat 32-bit otherwise) and reports whether it reached a
/// handler. `None` if `model` decodes the bytes as a different code.
pub fn reaches_handler(model: CpuModel, code: Code, bytes: &[u8], code32: bool) -> Option<bool> {
    let waits = code.op_code().fwait();
    let (steps, decoded) = if waits {
        (2, bytes.get(1..).unwrap_or_default())
    } else {
        (1, bytes)
    };
    let expected = no_wait_twin(code).filter(|_| waits).unwrap_or(code);
    match decode::decode(decoded, code32, model) {
        Ok(d) if d.insn.code() == expected => {}
        Ok(d) if d.pop_cs && code == Code::Popw_CS => {}
        _ => return None,
    }
    let mut cpu: Cpu = if code32 {
        setup::flat32_cpu(CODE_ADDR)
    } else {
        setup::real_mode_cpu(model, CODE_ADDR)
    };
    cpu.state.gpr = [POINTER; 8];
    cpu.state.gpr[4] = STACK;
    let mut ram = FlatRam::new(1 << 20);
    ram.load(CODE_ADDR, bytes);
    for _ in 0..steps {
        cpu.step(&mut ram);
    }
    Some(cpu.unimplemented.is_none())
}

/// Whether `code` is implemented on `model`, given its instances.
fn is_implemented(model: CpuModel, code: Code, inst: Option<&Instance>) -> bool {
    let info = code.op_code();
    let Some((i16, i32)) = inst else { return false };
    let mut ran = false;
    let runs = [
        (info.mode16(), i16.as_deref(), false),
        (
            info.mode32() && model.is_386_or_later(),
            i32.as_deref(),
            true,
        ),
    ];
    for (valid, bytes, code32) in runs {
        if let (true, Some(bytes)) = (valid, bytes) {
            match reaches_handler(model, code, bytes, code32) {
                Some(true) => ran = true,
                Some(false) => return false,
                None => {}
            }
        }
    }
    ran
}

/// Checks every required code of `opts.model` in `opts.scope`, printing
/// each missing one and the closing `N implemented, M missing` line.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<Summary> {
    let instances = find_instances();
    let mut summary = Summary::default();
    for code in required_set(opts.model, opts.scope) {
        if is_implemented(opts.model, code, instances.get(&code)) {
            summary.implemented += 1;
        } else {
            let info = code.op_code();
            let how = if instances.contains_key(&code) {
                ""
            } else {
                " (no instance found)"
            };
            writeln!(out, "missing {code:?}: {}{how}", info.instruction_string())?;
            summary.missing.push(code);
        }
    }
    writeln!(
        out,
        "{} implemented, {} missing",
        summary.implemented,
        summary.missing.len()
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p6_required_set_sizes() {
        let all = required_set(CpuModel::P6, Scope::All).len();
        let user = required_set(CpuModel::P6, Scope::User).len();
        eprintln!("p6 required: all {all}, user {user}");
        assert!((800..=840).contains(&all), "all = {all}");
        assert!((750..=790).contains(&user), "user = {user}");
    }

    #[test]
    fn older_models_have_smaller_sets() {
        let i8086 = required_set(CpuModel::I8086, Scope::All);
        let i286 = required_set(CpuModel::I286, Scope::All);
        assert!(i8086.contains(&Code::Add_rm8_r8) && !i8086.contains(&Code::Pushaw));
        assert!(i286.contains(&Code::Pushaw) && i286.contains(&Code::Lgdt_m1632_16));
        assert!(!i286.contains(&Code::Add_rm32_r32));
        assert!(i8086.len() < i286.len());
    }

    #[test]
    fn every_required_code_has_an_instance() {
        let inst = find_instances();
        for model in [CpuModel::I8086, CpuModel::I286, CpuModel::P6] {
            let none: Vec<_> = required_set(model, Scope::All)
                .into_iter()
                .filter(|c| !inst.contains_key(c))
                .collect();
            assert!(none.is_empty(), "{model:?}: no instance of {none:?}");
        }
    }

    #[test]
    fn p6_user_scope_has_nothing_missing() {
        let mut out = Vec::new();
        let s = run(
            &Options {
                model: CpuModel::P6,
                scope: Scope::User,
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(s.missing.is_empty(), "{text}");
    }

    #[test]
    fn every_model_executes_its_whole_set() {
        for model in [CpuModel::I8086, CpuModel::I286, CpuModel::P6] {
            let mut out = Vec::new();
            let opts = Options {
                model,
                scope: Scope::All,
            };
            let s = run(&opts, &mut out).unwrap();
            assert!(
                s.missing.is_empty(),
                "{model:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}
