; Control and debug registers, MSRs, fast system calls, alignment checking,
; CPUID and privileged instructions (Intel SDM Vol. 3A: 2.5 "Control
; Registers", 6.15 "Interrupt 17", 17.2-17.3 "Debug Registers" and "Debug
; Exceptions"; Vol. 2 for CPUID, RDMSR, WRMSR, SYSENTER, SYSEXIT, LMSW,
; SMSW, CLTS).
%include "lib.inc"

DR7_GD  equ 1 << 13
DR6_BD  equ 1 << 13
DR6_BS  equ 1 << 14
EFL_TF  equ 1 << 8
EFL_RF  equ 1 << 16
EFL_AC  equ 1 << 18

; The #DB handler the breakpoint checks install: counts, records EIP,
; EFLAGS and DR6, clears TF and sets RF in the image it returns with.
db_handler:
    push eax
    inc dword [ss:db_count]
    mov eax, [esp + 4]
    mov [ss:db_eip], eax
    mov eax, [esp + 12]
    mov [ss:db_eflags], eax
    mov eax, dr6
    mov [ss:db_dr6], eax
    and dword [esp + 12], ~EFL_TF
    or dword [esp + 12], EFL_RF
    pop eax
    iretd

align 8
db_count:   dd 0
db_eip:     dd 0
db_eflags:  dd 0
db_dr6:     dd 0
watch:      dd 0
r3_cs:      dd 0
saved_esp:  dd 0
misaligned: dd 0, 0

r3_push_misaligned:
    sub esp, 2
    push eax
    pop eax
    add esp, 2
    ret

; use_db_handler / use_isr1: switch vector 1 between db_handler and the frame's stub.
use_db_handler:
    pushad
    mov eax, 1
    mov ebx, db_handler
    mov ecx, SEL_CODE0
    mov edx, 0x8E00
    call set_gate
    mov dword [db_count], 0
    xor eax, eax
    mov dr6, eax
    popad
    ret
use_isr1:
    pushad
    mov eax, 1
    mov ebx, isr_1
    mov ecx, SEL_CODE0
    mov edx, 0x8E00
    call set_gate
    xor eax, eax
    mov dr7, eax
    popad
    ret

test_main:
    ; ------------------------------------------------------------------ CR0/CR4
    mov ebx, cr0
    mov eax, ebx
    and eax, ~1
    or eax, 0x80000000
    EXPECT_FAULT "CR0: PG without PE", 13, 0
    mov cr0, eax
    END_FAULT
    mov eax, ebx
    and eax, ~(1 << 30)
    or eax, 1 << 29
    EXPECT_FAULT "CR0: NW without CD", 13, 0
    mov cr0, eax
    END_FAULT
    mov eax, cr0
    CHECK_EQ "CR0 unchanged by the faults", eax, ebx
    mov eax, cr4
    or eax, 1 << 11
    EXPECT_FAULT "CR4: reserved bit 11", 13, 0
    mov cr4, eax
    END_FAULT
    mov eax, 1 << 31
    EXPECT_FAULT "CR4: reserved bit 31", 13, 0
    mov cr4, eax
    END_FAULT
    EXPECT_FAULT "MOV from CR1 is #UD", 6, -1
    db 0x0F, 0x20, 0xC8         ; mov eax, cr1
    END_FAULT

    ; ------------------------------------------------- DR4/DR5 and CR4.DE
    mov eax, 0x0000000F
    mov dr6, eax
    db 0x0F, 0x21, 0xE0         ; mov eax, dr4
    CHECK_EQ "DR4 aliases DR6 (CR4.DE=0)", eax, 0xFFFF0FFF
    mov eax, 0x100
    db 0x0F, 0x23, 0xE8         ; mov dr5, eax
    mov eax, dr7
    CHECK_EQ "DR5 aliases DR7 (CR4.DE=0)", eax, 0x500
    xor eax, eax
    mov dr7, eax
    mov dr6, eax
    mov eax, cr4
    or eax, 1 << 3
    mov cr4, eax
    EXPECT_FAULT "DR4 with CR4.DE is #UD", 6, -1
    db 0x0F, 0x21, 0xE0
    END_FAULT
    mov eax, cr4
    and eax, ~(1 << 3)
    mov cr4, eax

    ; ------------------------------------------------------------- DR7.GD
    mov eax, DR7_GD
    mov dr7, eax
    EXPECT_FAULT "DR7.GD: MOV from DR0 is #DB", 1, -1
gd_mov:
    mov eax, dr0
    END_FAULT
    CHECK_EQ "DR7.GD: #DB is a fault at the MOV", [last_eip], gd_mov
    mov eax, [last_eflags]
    and eax, EFL_RF
    CHECK_EQ "DR7.GD: fault pushes RF=1", eax, EFL_RF
    mov eax, dr6
    and eax, DR6_BD
    CHECK_EQ "DR7.GD: DR6.BD set", eax, DR6_BD
    mov eax, dr7
    and eax, DR7_GD
    CHECK_EQ "DR7.GD cleared on entry to the handler", eax, 0

    ; ------------------------------------------------ instruction breakpoint
    call use_db_handler
    mov eax, bp_target
    mov dr0, eax
    mov eax, 0x401              ; L0, execute, length 1
    mov dr7, eax
    xor ebx, ebx
    mov ecx, 2
bp_loop:
bp_target:
    add ebx, 1
    loop bp_loop
    call use_isr1
    CHECK_EQ "instruction bp: #DB before each execution", [db_count], 2
    CHECK_EQ "instruction bp: instruction ran after RF resume", ebx, 2
    CHECK_EQ "instruction bp: EIP is the instruction", [db_eip], bp_target
    mov eax, [db_dr6]
    and eax, 0xF
    CHECK_EQ "instruction bp: DR6.B0", eax, 1
    mov eax, [db_eflags]
    and eax, EFL_RF
    CHECK_EQ "instruction bp: RF pushed as 0", eax, 0
    ; A disabled breakpoint (L0=G0=0) does nothing.
    call use_db_handler
    mov eax, bp_target2
    mov dr0, eax
    mov eax, 0x400
    mov dr7, eax
    jmp bp_target2
bp_target2:
    nop
    call use_isr1
    CHECK_EQ "disabled breakpoint: no #DB", [db_count], 0

    ; ------------------------------------------------------ data breakpoints
    call use_db_handler
    mov eax, watch
    mov dr1, eax
    mov eax, (1 << 2) | (0xD << 20)     ; L1, write, 4 bytes
    mov dr7, eax
    mov eax, [watch]
    CHECK_EQ "write bp: a read does not trigger", [db_count], 0
    mov dword [watch], 1
after_write:
    mov eax, dr7                ; (fetched with the handler restored below)
    CHECK_EQ "write bp: #DB after the write", [db_count], 1
    CHECK_EQ "write bp: trap EIP is the next instruction", [db_eip], after_write
    CHECK_EQ "write bp: the write completed", [watch], 1
    mov eax, [db_dr6]
    and eax, 0xF
    CHECK_EQ "write bp: DR6.B1", eax, 2
    mov byte [watch + 3], 7
    CHECK_EQ "write bp: a byte inside the range triggers", [db_count], 2
    mov byte [watch + 4], 7
    CHECK_EQ "write bp: a byte past the range does not", [db_count], 2
    mov eax, (1 << 3) | (0xF << 20)     ; G1, read/write, 4 bytes
    mov dr7, eax
    mov eax, [watch + 2]
    CHECK_EQ "read/write bp: an overlapping read triggers", [db_count], 3
    ; REP STOSB across the watched dword: a trap after each iteration that
    ; writes it, EIP on the instruction and RF pushed as 1 until the last.
    mov eax, (1 << 2) | (0xD << 20)     ; L1, write, 4 bytes
    mov dr7, eax
    mov dword [db_count], 0
    mov edi, watch - 2
    mov ecx, 8
    mov al, 0x11
rep_stos:
    rep stosb
    CHECK_EQ "REP STOSB: one #DB per iteration hitting the range", [db_count], 4
    CHECK_EQ "REP STOSB: #DB with EIP on the instruction", [db_eip], rep_stos
    mov eax, [db_eflags]
    and eax, EFL_RF
    CHECK_EQ "REP STOSB: RF pushed as 1 mid-repeat", eax, EFL_RF
    CHECK_EQ "REP STOSB: completes", ecx, 0
    CHECK_EQ "REP STOSB: all bytes written", [watch], 0x11111111
    call use_isr1

    ; --------------------------------------------------- single-step (TF)
    call use_db_handler
    pushfd
    or dword [esp], EFL_TF
    popfd
    nop
step_next:
    nop
    call use_isr1
    CHECK_EQ "TF: one #DB (handler clears TF)", [db_count], 1
    CHECK_EQ "TF: trap after the instruction following POPF", [db_eip], step_next
    mov eax, [db_dr6]
    and eax, DR6_BS
    CHECK_EQ "TF: DR6.BS", eax, DR6_BS

    ; MOV SS delays the single-step trap past the next instruction.
    call use_db_handler
    mov ax, ss
    pushfd
    or dword [esp], EFL_TF
    popfd
    mov ss, ax
    nop
step_after_ss:
    nop
    call use_isr1
    CHECK_EQ "TF after MOV SS: one #DB", [db_count], 1
    CHECK_EQ "TF after MOV SS: reported after the next instruction", [db_eip], step_after_ss
    ; STI does not delay it.
    call use_db_handler
    pushfd
    or dword [esp], EFL_TF
    popfd
    sti
step_after_sti:
    cli
    call use_isr1
    CHECK_EQ "TF after STI: reported after STI", [db_eip], step_after_sti

    ; ---------------------------------------------------- RF on other faults
    EXPECT_FAULT "#GP from a null selector", 13, 0
    xor eax, eax
    mov ss, ax
    END_FAULT
    mov eax, [last_eflags]
    and eax, EFL_RF
    CHECK_EQ "fault pushes RF=1", eax, EFL_RF
    int 0x41
    mov eax, [last_eflags]
    and eax, EFL_RF
    CHECK_EQ "INT n pushes RF=0", eax, 0

    ; ------------------------------------------------------------------ MSRs
    mov ecx, 0x174
    mov eax, 0x5678
    xor edx, edx
    wrmsr
    xor eax, eax
    rdmsr
    and eax, 0xFFFF                 ; bits 16-63 are unused
    CHECK_EQ "SYSENTER_CS round trip", eax, 0x5678
    mov ecx, 0x175
    mov eax, 0xCAFEBABE
    wrmsr
    xor eax, eax
    rdmsr
    CHECK_EQ "SYSENTER_ESP", eax, 0xCAFEBABE
    mov ecx, 0x277
    rdmsr
    CHECK_EQ "PAT reset value (low)", eax, 0x00070406
    CHECK_EQ "PAT reset value (high)", edx, 0x00070406
    mov eax, 0x00070106             ; PA0 = WB, PA1 = WC, PA2 = UC-, PA3 = UC
    mov edx, 0x00070406
    wrmsr
    xor eax, eax
    rdmsr
    CHECK_EQ "PAT round trip", eax, 0x00070106
    mov eax, 0x00070206             ; type 2 is reserved
    EXPECT_FAULT "PAT with a reserved memory type", 13, 0
    wrmsr
    END_FAULT
    rdmsr
    CHECK_EQ "PAT unchanged by the #GP", eax, 0x00070106
    mov eax, 0x00070406
    wrmsr
    mov ecx, 0x2FF
    mov eax, 0x807                  ; type 7 (UC-) is PAT-only
    xor edx, edx
    EXPECT_FAULT "MTRRdefType with a reserved type", 13, 0
    wrmsr
    END_FAULT
    mov eax, 0x1006                 ; bit 12 reserved
    EXPECT_FAULT "MTRRdefType with a reserved bit", 13, 0
    wrmsr
    END_FAULT
    mov ecx, 0xFE
    EXPECT_FAULT "MTRRCAP is read-only", 13, 0
    wrmsr
    END_FAULT
    mov ecx, 0xC0000080
    rdmsr
    CHECK_EQ "EFER reads 0", eax, 0
    mov eax, 1 << 8             ; LME: no long mode here
    xor edx, edx
    EXPECT_FAULT "EFER.LME is reserved", 13, 0
    wrmsr
    END_FAULT
    mov ecx, 0xFE
    rdmsr
    and eax, 0xFF
    CHECK_EQ "MTRRCAP: 8 variable ranges", eax, 8
    mov ecx, 0x200
    mov eax, 0x00100006
    xor edx, edx
    wrmsr
    xor eax, eax
    rdmsr
    CHECK_EQ "MTRR PHYSBASE0 round trip", eax, 0x00100006
    mov ecx, 0x10
    xor eax, eax
    xor edx, edx
    wrmsr
    rdmsr
    CHECK_EQ "TSC written to 0 reads small (high)", edx, 0
    cmp eax, 100
    PASS_IF b, "TSC written to 0 reads small (low)"
    mov ecx, 0x12345
    EXPECT_FAULT "RDMSR of an unknown MSR", 13, 0
    rdmsr
    END_FAULT
    EXPECT_FAULT "WRMSR of an unknown MSR", 13, 0
    wrmsr
    END_FAULT

    ; ------------------------------------------------------ SYSENTER/SYSEXIT
    mov ecx, 0x174
    mov eax, SEL_CODE0
    xor edx, edx
    wrmsr
    mov ecx, 0x176
    mov eax, sysenter_entry
    wrmsr
    mov ecx, 0x175
    mov eax, esp
    wrmsr
    mov edx, r3_sysenter
    mov ecx, STACK3
    sysexit
r3_sysenter:
    xor eax, eax
    mov ax, cs
    mov [ss:r3_cs], eax
    mov ax, ss
    mov [ss:saved_esp], eax
    sysenter
sysenter_entry:
    CHECK_EQ "SYSEXIT: ring-3 CS", [r3_cs], SEL_CODE3
    CHECK_EQ "SYSEXIT: ring-3 SS", [saved_esp], SEL_DATA3
    xor eax, eax
    mov ax, cs
    CHECK_EQ "SYSENTER: CS from SYSENTER_CS", eax, SEL_CODE0
    mov ax, ss
    CHECK_EQ "SYSENTER: SS = CS + 8", eax, SEL_DATA0
    mov ecx, 0x174
    xor eax, eax
    xor edx, edx
    wrmsr
    EXPECT_FAULT "SYSENTER with SYSENTER_CS = 0", 13, 0
    sysenter
    END_FAULT

    ; ------------------------------------------------------- alignment check
    mov eax, cr0
    or eax, 1 << 18
    mov cr0, eax
    pushfd
    or dword [esp], EFL_AC
    popfd
    EXPECT_FAULT "AC: no #AC at CPL 0", -1, -1
    mov eax, [misaligned + 1]
    END_FAULT
    RING3_EXPECT "AC: misaligned dword at CPL 3", 17, 0, {mov eax, [misaligned + 1]}
    RING3_EXPECT "AC: misaligned word write at CPL 3", 17, 0, {mov word [misaligned + 3], ax}
    RING3_EXPECT "AC: aligned dword at CPL 3", -1, -1, {mov eax, [misaligned + 4]}
    RING3_EXPECT "AC: push with a misaligned ESP at CPL 3", 17, 0, {call r3_push_misaligned}
    RING3_EXPECT "AC: byte access never faults", -1, -1, {mov al, [misaligned + 3]}
    pushfd
    and dword [esp], ~EFL_AC
    popfd
    RING3_EXPECT "AC: EFLAGS.AC clear", -1, -1, {mov eax, [misaligned + 1]}
    mov eax, cr0
    and eax, ~(1 << 18)
    mov cr0, eax

    ; ------------------------------------------------------------------ CPUID
    xor eax, eax
    cpuid
    CHECK_EQ "CPUID vendor EBX", ebx, "Genu"
    CHECK_EQ "CPUID vendor EDX", edx, "ineI"
    CHECK_EQ "CPUID vendor ECX", ecx, "ntel"
    mov eax, 1
    cpuid
    mov ebx, eax
    shr ebx, 8
    and ebx, 0xF
    CHECK_EQ "CPUID family 6", ebx, 6
    shr eax, 4
    and eax, 0xF
    cmp eax, 3
    PASS_IF ae, "CPUID model >= 3"
    mov eax, edx
    and eax, 0x0101B97F
    CHECK_EQ "CPUID.1 EDX: FPU VME DE PSE TSC MSR PAE CX8 SEP MTRR PGE CMOV PAT FXSR", eax, 0x0101B97F
    mov eax, edx
    and eax, (1 << 9) | (1 << 7) | (1 << 14)
    CHECK_EQ "CPUID.1 EDX: no APIC, MCE, MCA", eax, 0
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000004
    PASS_IF ae, "CPUID brand leaves present"
    mov eax, 0x80000001
    cpuid
    and edx, 1 << 20
    CHECK_EQ "CPUID.80000001 EDX: NX (EFER.NXE works)", edx, 1 << 20
    mov eax, 0x80000002
    cpuid
    CHECK_EQ "CPUID brand string", eax, "oxid"

    ; --------------------------------------------------- privileged at ring 3
    RING3_EXPECT "HLT at ring 3", 13, 0, hlt
    RING3_EXPECT "INVD at ring 3", 13, 0, invd
    RING3_EXPECT "WBINVD at ring 3", 13, 0, wbinvd
    RING3_EXPECT "CLTS at ring 3", 13, 0, clts
    RING3_EXPECT "LMSW at ring 3", 13, 0, {lmsw ax}
    RING3_EXPECT "MOV from CR0 at ring 3", 13, 0, {mov eax, cr0}
    RING3_EXPECT "MOV to DR7 at ring 3", 13, 0, {mov dr7, eax}
    RING3_EXPECT "RDMSR at ring 3", 13, 0, rdmsr
    RING3_EXPECT "INVLPG at ring 3", 13, 0, {invlpg [0]}
    RING3_EXPECT "SMSW at ring 3 is allowed", -1, -1, {smsw ax}
    RING3_EXPECT "SYSEXIT at ring 3", 13, 0, sysexit
    RING3_EXPECT "RDTSC at ring 3 (CR4.TSD clear)", -1, -1, rdtsc
    mov eax, cr4
    or eax, 1 << 2
    mov cr4, eax
    RING3_EXPECT "RDTSC at ring 3 with CR4.TSD", 13, 0, rdtsc
    mov eax, cr4
    and eax, ~(1 << 2)
    mov cr4, eax
    EXPECT_FAULT "INVD/WBINVD at ring 0", -1, -1
    invd
    wbinvd
    END_FAULT

    ; ------------------------------------------------------ LMSW/SMSW/CLTS
    mov ebx, cr0
    smsw ax
    movzx eax, ax
    mov edx, ebx
    and edx, 0xFFFF
    CHECK_EQ "SMSW value", eax, edx
    mov ax, 0x0008 | 0x0002     ; TS | MP, PE clear
    lmsw ax
    mov eax, cr0
    and eax, 0xF
    CHECK_EQ "LMSW sets TS and MP, cannot clear PE", eax, 0xB
    clts
    mov eax, cr0
    and eax, 0xF
    CHECK_EQ "CLTS clears TS", eax, 0x3
    mov cr0, ebx
    ret
