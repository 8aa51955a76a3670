; Interrupts and exceptions: real-mode IVT delivery, IDT interrupt and trap
; gates, software INT n / INT3 / INTO / INT1 and their gate-DPL checks, gate
; and IDT-limit faults, fault and trap frames, the stack switch from ring 3,
; double faults, external interrupts (IF, the STI and MOV SS shadows, HLT),
; NMI blocking and single-step (Intel SDM Vol. 3A, chapter 6; 17.3.1.4 for
; single-step; 20.1.4 for the real-mode IVT).
%define REAL_MODE_PART
%include "lib.inc"

; ------------------------------------------------------------ real mode
bits 16
; Runs before protected mode (CS = DS = SS = 0, SP = 0x7000, IF = 0) and
; leaves its observations in rm_* for test_main to check.
real_mode_part:
    ; INT 0x30 through the IVT: FLAGS, CS, IP pushed; IF cleared.
    mov word [0x30 * 4], rm_isr30
    mov word [0x30 * 4 + 2], 0
    push word 0x0203            ; IF and CF set
    popf
    mov [rm_sp_before], sp
    int 0x30
rm_int30_after:
    pushf
    pop word [rm_flags_after]
    cli
    ; #DE: the saved IP is the DIV itself.
    mov word [0], rm_isr0
    mov word [2], 0
    xor bl, bl
    mov ax, 1
rm_div:
    div bl
rm_div_resume:
    ; A hardware interrupt through the IVT, only once IF = 1.
    mov word [0x31 * 4], rm_isr31
    mov word [0x31 * 4 + 2], 0
    ARM_IRQ 0x31, 0, 0
    nop
    nop
    mov ax, [rm_hw_count]
    mov [rm_hw_masked], ax
    sti
    nop
rm_hw_after:
    cli
    ret

rm_isr30:
    pushf
    pop word [rm_hflags]
    push bp
    mov bp, sp
    mov ax, [bp + 2]
    mov [rm_ip], ax
    mov ax, [bp + 4]
    mov [rm_cs], ax
    mov ax, [bp + 6]
    mov [rm_flags], ax
    lea ax, [bp + 2]
    mov [rm_sp_handler], ax
    pop bp
    iret

rm_isr0:
    push bp
    mov bp, sp
    mov ax, [bp + 2]
    mov [rm_de_ip], ax
    mov word [bp + 2], rm_div_resume
    pop bp
    iret

rm_isr31:
    push bp
    mov bp, sp
    inc word [rm_hw_count]
    mov ax, [bp + 2]
    mov [rm_hw_ip], ax
    pop bp
    iret

align 4
rm_sp_before:   dd 0
rm_sp_handler:  dd 0
rm_ip:          dd 0
rm_cs:          dd 0xFFFF
rm_flags:       dd 0
rm_hflags:      dd 0
rm_flags_after: dd 0
rm_de_ip:       dd 0
rm_hw_count:    dd 0
rm_hw_masked:   dd 0xFFFF
rm_hw_ip:       dd 0

bits 32
; A 16-bit interrupt gate's handler (its offset must fit in 16 bits, so it
; sits near the start): records the 16-bit frame, returns with IRET (o16).
rec16_isr:
    push eax
    mov eax, [esp + 4]
    mov [ss:f16_ipcs], eax
    movzx eax, word [esp + 8]
    mov [ss:f16_flags], eax
    lea eax, [esp + 4]
    mov [ss:f16_at], eax
    pop eax
    o16 iret

; ------------------------------------------------------ frame recorders
; rec_isr (no error code) and rec_isr_err (pops one) count the interrupt,
; record EFLAGS inside the handler, the frame (EIP, CS, EFLAGS and, from
; an outer level, ESP and SS) and where it sits, then return to
; [resume_at] if set. They clear TF in the returned EFLAGS.
rec_isr:
    mov dword [ss:frame_err], -1
    jmp rec_common
rec_isr_err:
    pop dword [ss:frame_err]
rec_common:
    push eax
    pushfd
    pop eax
    mov [ss:handler_flags], eax
    inc dword [ss:hits]
    lea eax, [esp + 4]
    mov [ss:frame_at], eax
    mov eax, [esp + 4]
    mov [ss:frame_eip], eax
    mov eax, [esp + 8]
    mov [ss:frame_cs], eax
    mov eax, [esp + 12]
    mov [ss:frame_eflags], eax
    mov eax, [esp + 16]
    mov [ss:frame_esp], eax
    mov eax, [esp + 20]
    mov [ss:frame_ss], eax
    and dword [esp + 12], ~0x100
    mov eax, [ss:resume_at]
    test eax, eax
    jz .keep
    mov [esp + 4], eax
    mov dword [ss:resume_at], 0
.keep:
    pop eax
    iretd

; rec_isr_cs: rec_isr that also records the handler's CS.
rec_isr_cs:
    push eax
    mov eax, cs
    mov [ss:handler_cs], eax
    pop eax
    jmp rec_isr

; NMI handler: the first NMI arms a second one and shows it stays blocked
; until IRET.
nmi_isr:
    push eax
    inc dword [ss:nmi_count]
    cmp dword [ss:nmi_count], 1
    jne .second
    mov eax, [esp + 4]
    mov [ss:nmi_eip1], eax
    pushfd
    pop eax
    mov [ss:nmi_flags], eax
    mov al, 0
    out 0xE2, al                ; a second NMI, pending at once
    nop
    nop
    nop
    mov eax, [ss:nmi_count]
    mov [ss:nmi_inside], eax
    pop eax
    iretd
.second:
    mov eax, [esp + 4]
    mov [ss:nmi_eip2], eax
    pop eax
    iretd

%macro CHECK_BITS 4             ; name, operand, mask, expected
    push eax
    mov eax, %2
    and eax, %3
    CHECK_EQ %1, eax, %4
    pop eax
%endmacro

test_main:
    ; ---------------------------------------------------- real mode
    mov eax, [rm_sp_before]
    sub eax, 6
    CHECK_EQ "real mode: INT pushes 3 words", [rm_sp_handler], eax
    CHECK_EQ "real mode: pushed IP is the next instruction", [rm_ip], rm_int30_after
    CHECK_EQ "real mode: pushed CS", [rm_cs], 0
    CHECK_BITS "real mode: pushed FLAGS (IF, CF)", [rm_flags], 0x0201, 0x0201
    CHECK_BITS "real mode: handler runs with IF = 0", [rm_hflags], 0x0200, 0
    CHECK_BITS "real mode: IRET restores FLAGS", [rm_flags_after], 0x0201, 0x0201
    CHECK_EQ "real mode: #DE pushes the DIV's IP", [rm_de_ip], rm_div
    CHECK_EQ "real mode: INTR held off while IF = 0", [rm_hw_masked], 0
    CHECK_EQ "real mode: INTR taken after STI + 1", [rm_hw_count], 1
    CHECK_EQ "real mode: INTR saved IP", [rm_hw_ip], rm_hw_after

    ; --------------------------------------- interrupt vs trap gates
    GATE 0x41, rec_isr, 0x8E00
    GATE 0x42, rec_isr, 0x8F00
    mov [esp_before], esp
    sti
    int 0x41
int41_after:
    cli
    CHECK_BITS "interrupt gate clears IF", [handler_flags], 0x200, 0
    CHECK_BITS "interrupt gate: pushed EFLAGS.IF = 1", [frame_eflags], 0x200, 0x200
    CHECK_EQ "INT n pushes the next EIP", [frame_eip], int41_after
    CHECK_EQ "INT n pushes CS", [frame_cs], SEL_CODE0
    mov eax, [esp_before]
    sub eax, 12
    CHECK_EQ "same-level frame is 3 dwords on the same stack", [frame_at], eax
    sti
    int 0x42
    cli
    CHECK_BITS "trap gate keeps IF", [handler_flags], 0x200, 0x200
    ; IRET restores IF from the frame.
    sti
    int 0x41
    pushfd
    pop eax
    cli
    CHECK_BITS "IRET restores IF", eax, 0x200, 0x200

    ; A 16-bit interrupt gate pushes a 16-bit frame.
    GATE 0x47, rec16_isr, 0x8600
    mov [esp_before], esp
    int 0x47
int47_after:
    CHECK_EQ "16-bit gate: IP and CS words", [f16_ipcs], int47_after + (SEL_CODE0 << 16)
    mov eax, [esp_before]
    sub eax, 6
    CHECK_EQ "16-bit gate: 3-word frame", [f16_at], eax
    CHECK_BITS "16-bit gate: FLAGS word", [f16_flags], 0xFFFF0002, 2

    ; Interrupt gates also clear NT (IRET then restores it).
    pushfd
    or dword [esp], 0x4000
    popfd
    int 0x41
    pushfd
    and dword [esp], ~0x4000
    popfd
    CHECK_BITS "gate entry clears NT", [handler_flags], 0x4000, 0
    CHECK_BITS "pushed EFLAGS keeps NT", [frame_eflags], 0x4000, 0x4000

    ; ------------------------------------------ software traps, ring 0
    EXPECT_FAULT "INT3 -> #BP", 3, -1
    int3
int3_after:
    END_FAULT
    CHECK_EQ "INT3 pushes the next EIP", [last_eip], int3_after
    EXPECT_FAULT "INT1 (ICEBP) -> #DB", 1, -1
    db 0xF1
int1_after:
    END_FAULT
    CHECK_EQ "INT1 pushes the next EIP", [last_eip], int1_after
    EXPECT_FAULT "INTO with OF = 1 -> #OF", 4, -1
    mov al, 0x7F
    add al, 1
    into
into_after:
    END_FAULT
    CHECK_EQ "INTO pushes the next EIP", [last_eip], into_after
    EXPECT_FAULT "INTO with OF = 0: nothing", -1, -1
    xor eax, eax
    into
    END_FAULT

    ; ------------------------------------------------ faults, ring 0
    EXPECT_FAULT "DIV by zero -> #DE", 0, -1
    xor edx, edx
    mov eax, 1
    xor ecx, ecx
de_insn:
    div ecx
    END_FAULT
    CHECK_EQ "#DE pushes the DIV's EIP", [last_eip], de_insn
    EXPECT_FAULT "DIV overflow -> #DE", 0, -1
    mov edx, 2
    mov ecx, 1
    div ecx
    END_FAULT
    EXPECT_FAULT "UD2 -> #UD", 6, -1
ud_insn:
    ud2
    END_FAULT
    CHECK_EQ "#UD pushes the UD2's EIP", [last_eip], ud_insn
    EXPECT_FAULT "BOUND out of range -> #BR", 5, -1
    mov eax, 11
br_insn:
    bound eax, [bounds]
    END_FAULT
    CHECK_EQ "#BR pushes the BOUND's EIP", [last_eip], br_insn
    EXPECT_FAULT "BOUND in range: nothing", -1, -1
    mov eax, 10
    bound eax, [bounds]
    END_FAULT

    ; An exception with an error code: the whole frame.
    GATE 13, rec_isr_err, 0x8E00
    mov [esp_before], esp
    mov dword [resume_at], gp_resume
    mov ax, 0x1F8
gp_insn:
    mov es, ax
gp_resume:
    GATE 13, isr_13, 0x8E00
    CHECK_EQ "#GP frame: error code", [frame_err], 0x1F8
    CHECK_EQ "#GP frame: EIP of the faulting instruction", [frame_eip], gp_insn
    CHECK_EQ "#GP frame: CS", [frame_cs], SEL_CODE0
    CHECK_BITS "#GP frame: EFLAGS bit 1", [frame_eflags], 2, 2
    mov eax, [esp_before]
    sub eax, 12
    CHECK_EQ "#GP frame: error code below EIP", [frame_at], eax

    ; ------------------------------------ gate and IDT-limit faults
    GATE 0x44, isr_68, 0x0E00     ; P = 0
    EXPECT_FAULT "INT to a not-present gate -> #NP", 11, 0x44 * 8 + 2
np_insn:
    int 0x44
    END_FAULT
    CHECK_EQ "#NP on INT pushes the INT's EIP", [last_eip], np_insn
    GATE 0x45, isr_69, 0x8C00     ; a call gate is no IDT gate
    EXPECT_FAULT "INT to a call gate in the IDT -> #GP", 13, 0x45 * 8 + 2
    int 0x45
    END_FAULT
    lidt [idt_small]
    EXPECT_FAULT "vector beyond the IDT limit -> #GP", 13, 0x40 * 8 + 2
    int 0x40
    END_FAULT
    lidt [idt_edge6]
    EXPECT_FAULT "gate straddling the IDT limit -> #GP", 13, 0x40 * 8 + 2
    int 0x40
    END_FAULT
    lidt [idt_edge7]
    EXPECT_FAULT "gate ending at the IDT limit is used", 0x40, -1
    int 0x40
    END_FAULT
    lidt [idt_desc]

    ; ------------------------------------------------ double faults
    GATE 13, isr_13, 0x0E00
    EXPECT_FAULT "#GP through a not-present gate -> #DF(0)", 8, 0
    mov ax, 0x1F8
    mov es, ax
    END_FAULT
    GATE 13, isr_13, 0x8E00
    GATE 0, isr_0, 0x0E00
    EXPECT_FAULT "#DE through a not-present gate -> #DF(0)", 8, 0
    xor ecx, ecx
    div ecx
    END_FAULT
    GATE 0, isr_0, 0x8E00
    ; A benign exception whose gate is missing: just #NP, EXT set.
    GATE 6, isr_6, 0x0E00
    EXPECT_FAULT "#UD through a not-present gate -> #NP (EXT)", 11, 6 * 8 + 3
    ud2
    END_FAULT
    GATE 6, isr_6, 0x8E00
    ; A contributory exception whose handler segment is not present.
    DESC SEL_FREE / 8, 0, 0xFFFFF, 0xC01A   ; ring-0 code, P = 0
    GATE 13, isr_13, 0x8E00, SEL_FREE
    GATE 11, isr_11, 0x8E00, SEL_FREE
    EXPECT_FAULT "#GP then #NP on the handler's CS -> #DF", 8, 0
    mov ax, 0x1F8
    mov es, ax
    END_FAULT
    GATE 13, isr_13, 0x8E00
    GATE 11, isr_11, 0x8E00
    ; INT n to a handler in a not-present segment: #NP(selector), EXT = 0.
    GATE 0x46, isr_70, 0x8E00, SEL_FREE
    EXPECT_FAULT "INT n, handler CS not present -> #NP(sel)", 11, SEL_FREE
    int 0x46
    END_FAULT

    ; ------------------------------------------------------- ring 3
    mov eax, r3_int3
    call ring3_call
    CHECK_EQ "ring 3: INT3 to a DPL-0 gate -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: INT3 DPL error code", [r3_err], 3 * 8 + 2
    mov eax, r3_into
    call ring3_call
    CHECK_EQ "ring 3: INTO to a DPL-0 gate -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: INTO DPL error code", [r3_err], 4 * 8 + 2
    mov eax, r3_int1
    call ring3_call
    CHECK_EQ "ring 3: INT1 ignores the gate DPL", [r3_vec], 1
    mov eax, r3_np
    call ring3_call
    CHECK_EQ "ring 3: DPL check before the P check", [r3_vec], 13
    CHECK_EQ "ring 3: DPL-0 not-present gate error code", [r3_err], 0x44 * 8 + 2
    mov eax, r3_cli
    call ring3_call
    CHECK_EQ "ring 3: CLI with IOPL 0 -> #GP(0)", [r3_vec], 13
    CHECK_EQ "ring 3: CLI error code", [r3_err], 0
    mov eax, r3_hlt
    call ring3_call
    CHECK_EQ "ring 3: HLT -> #GP(0)", [r3_vec], 13
    CHECK_EQ "ring 3: HLT error code", [r3_err], 0
    GATE 3, isr_3, 0xEE00
    mov eax, r3_int3
    call ring3_call
    CHECK_EQ "ring 3: INT3 to a DPL-3 gate -> #BP", [r3_vec], 3
    GATE 3, isr_3, 0x8E00
    ; The stack switch through TSS.ESP0.
    GATE 0x43, rec_isr, 0xEE00
    mov eax, r3_frame
    call ring3_call
    CHECK_EQ "ring 3 INT: new stack from TSS.ESP0", [frame_at], STACK_TSS - 20
    CHECK_EQ "ring 3 INT: pushed SS", [frame_ss], SEL_DATA3
    CHECK_EQ "ring 3 INT: pushed ESP", [frame_esp], [r3_esp]
    CHECK_EQ "ring 3 INT: pushed CS", [frame_cs], SEL_CODE3
    CHECK_EQ "ring 3 INT: pushed EIP", [frame_eip], r3_frame_after
    ; A gate to a conforming ring-0 segment: the handler runs at CPL 3 on
    ; the same stack.
    DESC SEL_FREE / 8 + 1, 0, 0xFFFFF, 0xC09E
    GATE 0x48, rec_isr_cs, 0xEE00, SEL_FREE + 8
    mov eax, r3_conf
    call ring3_call
    CHECK_EQ "ring 3 INT to conforming code: CPL stays 3", [handler_cs], SEL_FREE + 8 + 3
    CHECK_EQ "ring 3 INT to conforming code: same stack", [frame_at], [r3_esp]
    CHECK_EQ "ring 3 INT to conforming code: pushed CS", [frame_cs], SEL_CODE3
    ; An exception from ring 3 with an error code.
    GATE 13, rec_isr_err, 0x8E00
    mov eax, r3_gp
    call ring3_call
    GATE 13, isr_13, 0x8E00
    CHECK_EQ "ring 3 #GP: error code", [frame_err], 0x41 * 8 + 2
    CHECK_EQ "ring 3 #GP: EIP of the INT", [frame_eip], r3_gp_insn
    CHECK_EQ "ring 3 #GP: frame on the TSS stack", [frame_at], STACK_TSS - 20
    CHECK_EQ "ring 3 #GP: pushed SS", [frame_ss], SEL_DATA3
    CHECK_EQ "ring 3 #GP: pushed ESP", [frame_esp], [r3_esp]

    ; ---------------------------------------- external interrupts
    GATE 0x51, rec_isr, 0x8E00
    mov dword [hits], 0
    ARM_IRQ 0x51, 0, 0              ; pending now, IF = 0
    nop
    nop
    mov eax, [hits]
    mov [hits_masked], eax
    sti
    inc dword [marker]              ; the STI shadow covers this one
sti_after:
    cli
    CHECK_EQ "INTR held off while IF = 0", [hits_masked], 0
    CHECK_EQ "INTR taken once IF = 1", [hits], 1
    CHECK_EQ "STI shadow: taken after the next instruction", [frame_eip], sti_after
    CHECK_BITS "INTR through an interrupt gate clears IF", [handler_flags], 0x200, 0
    ; Countdown control: raised after one instruction, taken before the
    ; second.
    mov bx, ss
    sti
    ARM_IRQ 0x51, 0, 2
    mov ebx, ebx
cd_second:
    nop
    nop
    cli
    CHECK_EQ "countdown 2: taken after one instruction", [frame_eip], cd_second
    ; MOV SS holds the interrupt off for one more instruction.
    sti
    ARM_IRQ 0x51, 0, 2
    mov ss, bx
    nop
movss_after:
    nop
    cli
    CHECK_EQ "MOV SS shadow delays INTR by one instruction", [frame_eip], movss_after
    ; LSS sets no shadow.
    mov [lss_ptr], esp
    mov word [lss_ptr + 4], SEL_DATA0
    sti
    ARM_IRQ 0x51, 0, 2
    lss esp, [lss_ptr]
lss_int_after:
    nop
    cli
    CHECK_EQ "LSS: no interrupt shadow", [frame_eip], lss_int_after
    ; HLT is woken by the interrupt and resumes after the HLT.
    mov dword [hits], 0
    ARM_IRQ 0x51, 0, 5
    sti
    hlt
hlt_after:
    cli
    CHECK_EQ "HLT woken by INTR", [hits], 1
    CHECK_EQ "HLT: saved EIP after the HLT", [frame_eip], hlt_after

    ; Faults while delivering an external interrupt have EXT set.
    GATE 0x52, isr_82, 0x0E00
    ARM_IRQ 0x52, 0, 0
    EXPECT_FAULT "INTR through a not-present gate -> #NP (EXT)", 11, 0x52 * 8 + 3
    sti
    nop
    nop
    END_FAULT
    cli
    GATE 0x52, isr_82, 0x8E00
    lidt [idt_small]
    ARM_IRQ 0x52, 0, 0
    EXPECT_FAULT "INTR beyond the IDT limit -> #GP (EXT)", 13, 0x52 * 8 + 3
    sti
    nop
    nop
    END_FAULT
    cli
    lidt [idt_desc]

    ; An external interrupt in ring 3 goes through a DPL-0 gate (no DPL
    ; check for hardware interrupts) and switches stacks.
    mov dword [hits], 0
    ARM_IRQ 0x51, 0, 40
    sti
    mov eax, r3_wait
    call ring3_call                 ; returns with IF = 0 (INT 0x80 gate)
    CHECK_EQ "INTR in ring 3 through a DPL-0 gate", [hits], 1
    CHECK_EQ "INTR in ring 3: pushed CS", [frame_cs], SEL_CODE3
    CHECK_EQ "INTR in ring 3: pushed SS", [frame_ss], SEL_DATA3
    CHECK_EQ "INTR in ring 3: frame on the TSS stack", [frame_at], STACK_TSS - 20

    ; ---------------------------------------------------------- NMI
    GATE 2, nmi_isr, 0x8E00
    ARM_IRQ 2, 1, 0                 ; NMI now, IF = 0
nmi_ret1:
    nop
    nop
    nop
    mov al, 0
    out 0xE1, al                    ; back to INTR mode
    CHECK_EQ "NMI taken with IF = 0", [nmi_eip1], nmi_ret1
    CHECK_BITS "NMI handler runs with IF = 0", [nmi_flags], 0x200, 0
    CHECK_EQ "second NMI blocked inside the handler", [nmi_inside], 1
    CHECK_EQ "second NMI taken after IRET", [nmi_count], 2
    CHECK_EQ "second NMI taken right after IRET", [nmi_eip2], nmi_ret1

    ; HLT with IF = 0 is still woken by an NMI.
    GATE 2, rec_isr, 0x8E00
    mov dword [hits], 0
    ARM_IRQ 2, 1, 4
    hlt
nmi_hlt_after:
    mov al, 0
    out 0xE1, al
    CHECK_EQ "NMI wakes HLT with IF = 0", [hits], 1
    CHECK_EQ "NMI after HLT: saved EIP", [frame_eip], nmi_hlt_after

    ; ---------------------------------------------------- single-step
    GATE 1, rec_isr, 0x8E00
    xor eax, eax
    mov dr6, eax
    mov dword [hits], 0
    pushfd
    or dword [esp], 0x100
    popfd                           ; sets TF: no trap after the POPFD
    inc dword [marker]
tf_after:
    nop
    CHECK_EQ "TF: one #DB", [hits], 1
    CHECK_EQ "TF: #DB after the next instruction", [frame_eip], tf_after
    CHECK_BITS "TF: pushed EFLAGS.TF", [frame_eflags], 0x100, 0x100
    CHECK_BITS "TF: handler runs with TF = 0", [handler_flags], 0x100, 0
    mov eax, dr6
    CHECK_BITS "TF: DR6.BS", eax, 0x4000, 0x4000
    ; MOV SS also suppresses the single-step trap for one instruction.
    mov dword [hits], 0
    mov bx, ss
    pushfd
    or dword [esp], 0x100
    popfd
    mov ss, bx
    nop
tf_ss_after:
    nop
    CHECK_EQ "TF + MOV SS: one #DB", [hits], 1
    CHECK_EQ "TF + MOV SS: #DB after the following instruction", [frame_eip], tf_ss_after
    ; STI's shadow holds off interrupts, not single-step traps.
    GATE 1, tf_count_isr, 0x8E00
    mov dword [hits], 0
    pushfd
    or dword [esp], 0x100
    popfd
    sti
    inc dword [marker]
    nop
    cli
    CHECK_EQ "TF + STI: a trap after STI and after the next", [hits], 2
    ; LSS has no shadow: the trap comes right after it.
    GATE 1, rec_isr, 0x8E00
    mov dword [hits], 0
    mov [lss_ptr], esp
    mov word [lss_ptr + 4], SEL_DATA0
    pushfd
    or dword [esp], 0x100
    popfd
    lss esp, [lss_ptr]
lss_after:
    nop
    CHECK_EQ "TF + LSS: #DB right after LSS", [frame_eip], lss_after
    GATE 1, isr_1, 0x8E00
    ret

; Counts single-step traps and stops stepping after the second.
tf_count_isr:
    inc dword [ss:hits]
    cmp dword [ss:hits], 2
    jb .keep
    and dword [esp + 8], ~0x100
.keep:
    iretd

; ---------------------------------------------------- ring-3 snippets
r3_int3:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    int3
    jmp r3_back
r3_into:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    mov al, 0x7F
    add al, 1
    into
    jmp r3_back
r3_int1:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    db 0xF1
    jmp r3_back
r3_np:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    int 0x44
r3_cli:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    cli
    jmp r3_back
r3_hlt:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    hlt
r3_back:
    mov dword [resume_at], 0
    mov eax, [last_vector]
    mov [r3_vec], eax
    mov eax, [last_error]
    mov [r3_err], eax
    int 0x80

r3_wait:
    cmp dword [hits], 0
    je r3_wait
    int 0x80

r3_conf:
    lea eax, [esp - 12]
    mov [r3_esp], eax
    int 0x48
    int 0x80

r3_frame:
    mov [r3_esp], esp
    int 0x43
r3_frame_after:
    int 0x80

r3_gp:
    mov [r3_esp], esp
    mov dword [resume_at], r3_gp_back
r3_gp_insn:
    int 0x41
r3_gp_back:
    int 0x80

align 4
bounds:     dd 0, 10
idt_small:  dw 0x40 * 8 - 1
            dd idt
idt_edge6:  dw 0x40 * 8 + 6
            dd idt
idt_edge7:  dw 0x40 * 8 + 7
            dd idt
esp_before:     dd 0
handler_cs:     dd 0
f16_ipcs:       dd 0
f16_flags:      dd 0
f16_at:         dd 0
lss_ptr:        dd 0, 0
handler_flags:  dd 0
hits:           dd 0
hits_masked:    dd 0
marker:         dd 0
frame_err:      dd 0
frame_at:       dd 0
frame_eip:      dd 0
frame_cs:       dd 0
frame_eflags:   dd 0
frame_esp:      dd 0
frame_ss:       dd 0
nmi_count:      dd 0
nmi_inside:     dd 0
nmi_flags:      dd 0
nmi_eip1:       dd 0
nmi_eip2:       dd 0
r3_vec:         dd 0
r3_err:         dd 0
r3_esp:         dd 0
