; Hardware task switching: JMP and CALL to TSSs and task gates, the nested
; return by IRET, interrupts and exceptions through task gates, busy bits,
; NT and the back link, CR0.TS, the LDT from the TSS, 16-bit TSSs and the
; switch's own faults (Intel SDM Vol. 3A, chapter 7; table 7-2).
%include "lib.inc"

SEL_TSSB    equ SEL_FREE + 0x00     ; JMP target, with an LDT
SEL_TSSC    equ SEL_FREE + 0x08     ; CALL target (direct and through a gate)
SEL_SMALL   equ SEL_FREE + 0x10     ; TSS below the minimum limit
SEL_LDT     equ SEL_FREE + 0x18     ; LDT for task B
SEL_TSSD    equ SEL_FREE + 0x20     ; INT 0x60 through a task gate
SEL_TSSE    equ SEL_FREE + 0x28     ; #GP through a task gate
SEL_TSS16   equ SEL_FREE + 0x30     ; a 16-bit TSS
SEL_GATEC   equ SEL_FREE + 0x38     ; task gate in the GDT to TSS C
SEL_TSSF    equ SEL_FREE + 0x40     ; TSS with a bad LDT selector
SEL_TSSG    equ SEL_FREE + 0x48     ; #TS through a task gate
SEL_GATE3   equ SEL_FREE + 0x50     ; DPL-3 task gate to TSS C
SEL_TSSH    equ SEL_FREE + 0x58     ; #TS handler task for the SS0 test

TSS_LINK    equ 0x00
TSS_CR3     equ 0x1C
TSS_EIP     equ 0x20
TSS_EFLAGS  equ 0x24
TSS_EAX     equ 0x28
TSS_EBX     equ 0x34
TSS_ESP     equ 0x38
TSS_ES      equ 0x48
TSS_LDT     equ 0x60

; BUSY name, selector, expected (0 or 2): check a TSS descriptor's busy bit.
%macro BUSY 3
    push eax
    movzx eax, byte [gdt + %2 + 5]
    and eax, 2
    CHECK_EQ %1, eax, %3
    pop eax
%endmacro

; init_tss: EDI = TSS, EAX = EIP, EBX = ESP; flat ring-0 segments,
; EFLAGS = 2, no LDT, link 0.
init_tss:
    pushad
    push edi
    mov ecx, 0x68 / 4
    push eax
    xor eax, eax
    rep stosd
    pop eax
    pop edi
    mov [edi + TSS_EIP], eax
    mov [edi + TSS_ESP], ebx
    mov dword [edi + TSS_EFLAGS], 2
    mov eax, cr3
    mov [edi + TSS_CR3], eax
    mov dword [edi + TSS_ES], SEL_DATA0         ; ES
    mov dword [edi + TSS_ES + 4], SEL_CODE0     ; CS
    mov dword [edi + TSS_ES + 8], SEL_DATA0     ; SS
    mov dword [edi + TSS_ES + 12], SEL_DATA0    ; DS
    mov dword [edi + TSS_ES + 16], SEL_DATA0    ; FS
    mov dword [edi + TSS_ES + 20], SEL_DATA0    ; GS
    mov word [edi + 0x66], 0x68
    popad
    ret

test_main:
    DESC SEL_TSSB / 8, tssB, 0x67, 0x0089
    DESC SEL_TSSC / 8, tssC, 0x67, 0x0089
    DESC SEL_SMALL / 8, tssS, 0x66, 0x0089
    DESC SEL_LDT / 8, ldtB, 15, 0x0082
    DESC SEL_TSSD / 8, tssD, 0x67, 0x0089
    DESC SEL_TSSE / 8, tssE, 0x67, 0x0089
    DESC SEL_TSS16 / 8, tss16, 0x2B, 0x0081
    DESC SEL_TSSF / 8, tssF, 0x67, 0x0089
    DESC SEL_TSSG / 8, tssG, 0x67, 0x0089
    ; Task gates in the GDT: selector in bytes 2-3, access 0x85 / 0xE5.
    mov word [gdt + SEL_GATEC + 2], SEL_TSSC
    mov byte [gdt + SEL_GATEC + 5], 0x85
    mov word [gdt + SEL_GATE3 + 2], SEL_TSSC
    mov byte [gdt + SEL_GATE3 + 5], 0xE5
    ; The LDT: one data segment at 0x100000.
    mov dword [ldtB], 0x0000FFFF
    mov dword [ldtB + 4], 0x00CF9210
    mov dword [0x100000], 0x5A5A1234

    mov edi, tssB
    mov eax, taskB
    mov ebx, stackB_top
    call init_tss
    mov dword [tssB + TSS_EAX], 0x1111
    mov dword [tssB + TSS_EFLAGS], 0x0002 | 0x0001 | 0x0040    ; CF, ZF
    mov dword [tssB + TSS_LDT], SEL_LDT
    mov dword [tssB + TSS_LINK], 0x5555
    mov edi, tssC
    mov eax, taskC
    mov ebx, stackC_top
    call init_tss
    mov edi, tssD
    mov eax, taskD
    mov ebx, stackD_top
    call init_tss
    mov edi, tssE
    mov eax, taskE
    mov ebx, stackE_top
    call init_tss
    mov edi, tssG
    mov eax, taskG
    mov ebx, stackG_top
    call init_tss
    mov edi, tssF
    mov eax, taskB
    mov ebx, stackB_top
    call init_tss
    mov dword [tssF + TSS_LDT], SEL_TSSC        ; not an LDT

    ; ------------------------------------------------ JMP to a TSS
    mov ebx, 0xABCD1234
    mov esi, esp
    mov eax, cr0
    and eax, ~8
    mov cr0, eax
    jmp SEL_TSSB:0
jmpB_back:
    CHECK_EQ "JMP: new task's EAX from its TSS", [b_eax], 0x1111
    CHECK_EQ "JMP: new task's EFLAGS from its TSS", [b_flags], 0x41
    CHECK_EQ "JMP: TR is the new TSS", [b_tr], SEL_TSSB
    CHECK_EQ "JMP: new task busy", [b_busy_new], 2
    CHECK_EQ "JMP: old task not busy", [b_busy_old], 0
    CHECK_EQ "JMP: NT clear in the new task", [b_nt], 0
    CHECK_EQ "LDTR loaded from the TSS", [b_ldtr], SEL_LDT
    CHECK_EQ "LDT segment usable in the new task", [b_ldt_data], 0x5A5A1234
    CHECK_EQ "JMP: back link not written", [tssB + TSS_LINK], 0x5555
    CHECK_EQ "JMP back: old task's EBX restored", ebx, 0xABCD1234
    mov eax, esp
    CHECK_EQ "JMP back: old task's ESP restored", eax, esi
    CHECK_EQ "JMP back: old task's EIP saved in its TSS", [tss0 + TSS_EIP], jmpB_back
    CHECK_EQ "JMP back: task B's EIP saved", [tssB + TSS_EIP], taskB_resumed
    BUSY "JMP back: B not busy", SEL_TSSB, 0
    BUSY "JMP back: task 0 busy", SEL_TSS, 2
    str ax
    movzx eax, ax
    CHECK_EQ "JMP back: TR", eax, SEL_TSS
    sldt ax
    movzx eax, ax
    CHECK_EQ "JMP back: LDTR from task 0's TSS (null)", eax, 0
    mov eax, cr0
    and eax, 8
    CHECK_EQ "CR0.TS set by the task switch", eax, 8
    clts
    mov eax, cr0
    and eax, 8
    CHECK_EQ "CLTS clears CR0.TS", eax, 0

    ; ------------------------------------- CALL to a TSS, IRET back
    mov dword [tssC + TSS_LINK], 0
    mov ebx, 0x600DF00D
    call SEL_TSSC:0
callC_back:
    CHECK_EQ "CALL: back link = caller's TSS", [c_link], SEL_TSS
    CHECK_EQ "CALL: NT set in the new task", [c_nt], 0x4000
    CHECK_EQ "CALL: caller stays busy", [c_busy_old], 2
    CHECK_EQ "CALL: new task busy", [c_busy_new], 2
    CHECK_EQ "IRET: back in the caller", ebx, 0x600DF00D
    pushfd
    pop eax
    and eax, 0x4000
    CHECK_EQ "IRET: caller's NT stays clear", eax, 0
    mov eax, [tssC + TSS_EFLAGS]
    and eax, 0x4000
    CHECK_EQ "IRET: NT cleared in the returning task's TSS", eax, 0
    BUSY "IRET: returning task not busy", SEL_TSSC, 0
    BUSY "IRET: caller busy", SEL_TSS, 2
    CHECK_EQ "CALL: caller's EIP saved", [tss0 + TSS_EIP], callC_back
    ; Through a task gate in the GDT (the offset is ignored).
    mov dword [c_link], 0
    call SEL_GATEC:0x12345678
    CHECK_EQ "CALL task gate: back link", [c_link], SEL_TSS
    CHECK_EQ "CALL task gate: runs the task again", [c_runs], 2
    ; JMP through a task gate.
    mov dword [b_eax], 0
    mov dword [tssB + TSS_EIP], taskB
    mov dword [tssB + TSS_EAX], 0x2222
    mov dword [tssB + TSS_ESP], stackB_top
    mov word [gdt + SEL_GATEC + 2], SEL_TSSB
    jmp SEL_GATEC:0
    mov word [gdt + SEL_GATEC + 2], SEL_TSSC
    CHECK_EQ "JMP task gate: task ran", [b_eax], 0x2222

    ; ------------------------------------- interrupts through task gates
    GATE 0x60, 0, 0x8500, SEL_TSSD
    mov dword [d_runs], 0
    int 0x60
int60_back:
    CHECK_EQ "INT task gate: task ran", [d_runs], 1
    CHECK_EQ "INT task gate: back link", [d_link], SEL_TSS
    CHECK_EQ "INT task gate: NT set", [d_nt], 0x4000
    CHECK_EQ "INT task gate: next EIP saved", [tss0 + TSS_EIP], int60_back
    CHECK_EQ "INT task gate: no frame on the task's stack", [d_esp], stackD_top
    ; An exception with an error code through a task gate.
    GATE 13, 0, 0x8500, SEL_TSSE
    mov dword [e_resume], gp_resume
    mov ax, 0x1F8
gp_insn:
    mov es, ax
gp_resume:
    GATE 13, isr_13, 0x8E00
    CHECK_EQ "#GP task gate: handler task ran", [e_runs], 1
    CHECK_EQ "#GP task gate: error code on the new stack", [e_err], 0x1F8
    CHECK_EQ "#GP task gate: pushed on the task's own stack", [e_esp], stackE_top - 4
    CHECK_EQ "#GP task gate: faulting EIP saved", [e_eip], gp_insn

    ; ------------------------------------------------ switch faults
    EXPECT_FAULT "TSS limit below 0x67 -> #TS", 10, SEL_SMALL
ts_jmp:
    jmp SEL_SMALL:0
    END_FAULT
    CHECK_EQ "#TS before the switch: EIP of the JMP", [last_eip], ts_jmp
    BUSY "#TS before the switch: task 0 still busy", SEL_TSS, 2
    GATE 0x61, 0, 0x8500, SEL_SMALL
    EXPECT_FAULT "INT to a task gate, TSS too small -> #TS", 10, SEL_SMALL
ts_int:
    int 0x61
    END_FAULT
    CHECK_EQ "#TS on INT task gate: EIP of the INT", [last_eip], ts_int
    DESC SEL_SMALL / 8, tssS, 0x2A, 0x0081
    EXPECT_FAULT "16-bit TSS limit below 0x2B -> #TS", 10, SEL_SMALL
    jmp SEL_SMALL:0
    END_FAULT
    DESC SEL_SMALL / 8, tssS, 0x67, 0x0009
    EXPECT_FAULT "TSS not present -> #NP", 11, SEL_SMALL
np_call:
    call SEL_SMALL:0
    END_FAULT
    CHECK_EQ "#NP on CALL to a TSS: EIP of the CALL", [last_eip], np_call
    DESC SEL_SMALL / 8, tssS, 0x66, 0x0089
    EXPECT_FAULT "JMP to the busy current TSS -> #GP", 13, SEL_TSS
    jmp SEL_TSS:0
    END_FAULT
    EXPECT_FAULT "CALL to a busy TSS -> #GP", 13, SEL_TSS
    call SEL_TSS:0
    END_FAULT
    mov word [gdt + SEL_GATEC + 2], SEL_TSS
    EXPECT_FAULT "task gate to a busy TSS -> #GP(TSS)", 13, SEL_TSS
    jmp SEL_GATEC:0
    END_FAULT
    mov word [gdt + SEL_GATEC + 2], SEL_TSSC
    EXPECT_FAULT "TSS selector with TI = 1 -> #GP", 13, SEL_TSSC | 4
    jmp (SEL_TSSC | 4):0
    END_FAULT
    ; IRET with NT to a TSS that is not busy: #TS(link).
    mov word [tss0 + TSS_LINK], SEL_TSSC
    EXPECT_FAULT "IRET with NT to a non-busy TSS -> #TS", 10, SEL_TSSC
    pushfd
    or dword [esp], 0x4000
    popfd
    iretd
    END_FAULT
    pushfd
    and dword [esp], ~0x4000
    popfd
    ; A bad LDT selector in the new TSS: #TS in the new task (handled by
    ; a task so that no segment of the new task is needed).
    GATE 10, 0, 0x8500, SEL_TSSG
    jmp SEL_TSSF:0
    GATE 10, isr_10, 0x8E00
    CHECK_EQ "bad LDT in the TSS -> #TS(LDT selector)", [g_err], SEL_TSSC
    CHECK_EQ "#TS raised in the new task", [g_link], SEL_TSSF
    CHECK_EQ "new task's EIP kept", [tssF + TSS_EIP], taskB
    ; The same through an INT task gate: the fault belongs to the new task.
    mov edi, tssF
    mov eax, taskB
    mov ebx, stackB_top
    call init_tss
    mov dword [tssF + TSS_LDT], SEL_TSSC
    DESC SEL_TSSF / 8, tssF, 0x67, 0x0089
    mov dword [g_link], 0
    GATE 10, 0, 0x8500, SEL_TSSG
    GATE 0x62, 0, 0x8500, SEL_TSSF
    int 0x62
    GATE 10, isr_10, 0x8E00
    CHECK_EQ "INT task gate, bad LDT -> #TS(LDT selector)", [g_err], SEL_TSSC
    CHECK_EQ "INT task gate, bad LDT: #TS in the new task", [g_link], SEL_TSSF
    CHECK_EQ "INT task gate, bad LDT: new task's EIP kept", [tssF + TSS_EIP], taskB

    ; ---------------------------------------------------- ring 3
    mov eax, r3_gate
    call ring3_call
    CHECK_EQ "ring 3: DPL-0 task gate -> #GP(gate)", [r3_vec], 13
    CHECK_EQ "ring 3: task gate error code", [r3_err], SEL_GATEC
    mov eax, r3_tss
    call ring3_call
    CHECK_EQ "ring 3: DPL-0 TSS -> #GP(TSS)", [r3_vec], 13
    CHECK_EQ "ring 3: TSS error code", [r3_err], SEL_TSSC
    mov eax, r3_gate3
    call ring3_call
    CHECK_EQ "ring 3: DPL-3 task gate switches", [c_runs], 3
    CHECK_EQ "ring 3: the caller's CS saved", [tss0 + TSS_ES + 4], SEL_CODE3

    ; ------------------------------------------ the TSS debug-trap bit
    mov edi, tssB
    mov eax, taskB
    mov ebx, stackB_top
    call init_tss
    mov word [tssB + 0x64], 1                   ; T
    mov dword [tssB + TSS_LDT], SEL_LDT
    xor eax, eax
    mov dr6, eax
    mov dword [last_vector], -1     ; no resume_at: the trap returns into task B
    jmp SEL_TSSB:0
    CHECK_EQ "TSS T bit: #DB on the switch", [last_vector], 1
    CHECK_EQ "TSS T bit: #DB before the new task's first instruction", [last_eip], taskB
    mov eax, dr6
    and eax, 0x8000
    CHECK_EQ "TSS T bit: DR6.BT", eax, 0x8000
    ; Through an INT task gate: the trap is still the new task's.
    mov word [tssC + 0x64], 1
    GATE 0x63, 0, 0x8500, SEL_TSSC
    mov dword [last_eip], 0
    int 0x63
    mov word [tssC + 0x64], 0
    CHECK_EQ "TSS T bit via INT task gate: #DB at the new task's EIP", [last_eip], taskC_loop
    ; An exception through a task gate to a task with T: #DB follows in
    ; the new task, at its EIP.
    mov word [tssE + 0x64], 1
    GATE 13, 0, 0x8500, SEL_TSSE
    mov dword [e_resume], gp2_resume
    mov dword [last_eip], 0
    mov ax, 0x1F8
    mov es, ax
gp2_resume:
    GATE 13, isr_13, 0x8E00
    mov word [tssE + 0x64], 0
    CHECK_EQ "TSS T bit via #GP task gate: #DB at the new task's EIP", [last_eip], taskE_loop
    CHECK_EQ "TSS T bit via #GP task gate: handler task ran", [e_runs], 2

    ; ------------------------------ a bad SS0 in the TSS (ring 3 INT)
    ; The stack switch for an INT from ring 3 reads SS0 from the TSS: a
    ; DPL-3 SS0 is #TS(SS0); a task handles it, repairs SS0 and resumes
    ; ring 3 past the INT.
    DESC SEL_TSSH / 8, tssH, 0x67, 0x0089
    mov edi, tssH
    mov eax, taskH
    mov ebx, stackH_top
    call init_tss
    GATE 10, 0, 0x8500, SEL_TSSH
    GATE 0x64, isr_100, 0xEE00
    mov dword [tss0 + 8], SEL_DATA3
    mov eax, r3_bad_ss0
    call ring3_call
    GATE 10, isr_10, 0x8E00
    CHECK_EQ "INT from ring 3, SS0 with DPL 3 -> #TS(SS0)", [h_err], SEL_DATA3 & ~3
    CHECK_EQ "#TS(SS0): EIP of the INT", [h_eip], r3_bad_ss0_int
    CHECK_EQ "#TS(SS0): ring 3 resumed after the repair", [h_resumed], 1

    ; --------------------------------------------------- 16-bit TSS
    mov word [tss16 + 0x0E], task16             ; IP
    mov word [tss16 + 0x10], 0x0002             ; FLAGS
    mov word [tss16 + 0x12], 0x7777             ; AX
    mov word [tss16 + 0x1A], 0                  ; SP
    mov word [tss16 + 0x22], SEL_DATA0          ; ES
    mov word [tss16 + 0x24], SEL_CODE0          ; CS
    mov word [tss16 + 0x26], SEL_DATA0          ; SS
    mov word [tss16 + 0x28], SEL_DATA0          ; DS
    mov word [tss16 + 0x2A], 0                  ; LDT
    mov ebx, 0x1234BEEF
    jmp SEL_TSS16:0
    CHECK_EQ "16-bit TSS: AX loaded", [t16_ax], 0x7777
    movzx eax, word [tss16 + 0x0E]
    CHECK_EQ "16-bit TSS: IP saved on the way out", eax, task16_resumed
    movzx eax, word [tss16 + 0x18]
    CHECK_EQ "16-bit TSS: BX saved", eax, 0xBEEF
    CHECK_EQ "back from the 16-bit task", ebx, 0x1234BEEF
    ret

; ------------------------------------------------------------- tasks
taskB:
    mov [b_eax], eax
    pushfd
    pop eax
    mov ecx, eax
    and eax, 0xFFF
    and eax, 0x41
    mov [b_flags], eax
    and ecx, 0x4000
    mov [b_nt], ecx
    str ax
    movzx eax, ax
    mov [b_tr], eax
    sldt ax
    movzx eax, ax
    mov [b_ldtr], eax
    movzx eax, byte [gdt + SEL_TSSB + 5]
    and eax, 2
    mov [b_busy_new], eax
    movzx eax, byte [gdt + SEL_TSS + 5]
    and eax, 2
    mov [b_busy_old], eax
    mov ax, 4                   ; LDT index 0
    mov fs, ax
    mov eax, [fs:0]
    mov [b_ldt_data], eax
    xor ebx, ebx
    jmp SEL_TSS:0
taskB_resumed:
    jmp taskB

taskC:
    inc dword [c_runs]
    movzx eax, word [tssC + TSS_LINK]
    mov [c_link], eax
    pushfd
    pop eax
    and eax, 0x4000
    mov [c_nt], eax
    movzx eax, byte [gdt + SEL_TSS + 5]
    and eax, 2
    mov [c_busy_old], eax
    movzx eax, byte [gdt + SEL_TSSC + 5]
    and eax, 2
    mov [c_busy_new], eax
    xor ebx, ebx
    iretd
taskC_loop:
    jmp taskC

taskD:
    inc dword [d_runs]
    movzx eax, word [tssD + TSS_LINK]
    mov [d_link], eax
    pushfd
    pop eax
    and eax, 0x4000
    mov [d_nt], eax
    mov [d_esp], esp
    iretd
    jmp taskD

taskE:
    inc dword [e_runs]
    mov [e_esp], esp
    pop eax
    mov [e_err], eax
    mov eax, [tss0 + TSS_EIP]
    mov [e_eip], eax
    mov eax, [e_resume]
    mov [tss0 + TSS_EIP], eax
    iretd
taskE_loop:
    jmp taskE

taskG:
    pop eax
    mov [g_err], eax
    movzx eax, word [tssG + TSS_LINK]
    mov [g_link], eax
    and byte [gdt + SEL_TSS + 5], ~2    ; task 0 may be busy (INT case)
    jmp SEL_TSS:0
    jmp taskG

taskH:
    pop eax
    mov [h_err], eax
    mov eax, [tss0 + TSS_EIP]
    mov [h_eip], eax
    mov dword [tss0 + 8], SEL_DATA0             ; repair SS0
    mov dword [tss0 + TSS_EIP], r3_bad_ss0_resume
    iretd
    jmp taskH

task16:
    mov [t16_ax], ax
    mov bx, 0xBEEF
    jmp SEL_TSS:0
task16_resumed:
    jmp task16

; ----------------------------------------------------- ring-3 parts
r3_gate:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    jmp SEL_GATEC:0
r3_tss:
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
    call SEL_TSSC:0
r3_back:
    mov dword [resume_at], 0
    mov eax, [last_vector]
    mov [r3_vec], eax
    mov eax, [last_error]
    mov [r3_err], eax
    int 0x80
r3_bad_ss0:
    mov dword [h_resumed], 0
r3_bad_ss0_int:
    int 0x64
r3_bad_ss0_resume:
    mov dword [h_resumed], 1
    int 0x80
r3_gate3:
    call (SEL_GATE3 | 3):0
    int 0x80

; --------------------------------------------------------------- data
align 4
b_eax:      dd 0
b_flags:    dd 0
b_nt:       dd 0
b_tr:       dd 0
b_ldtr:     dd 0
b_busy_new: dd 0
b_busy_old: dd 0
b_ldt_data: dd 0
c_runs:     dd 0
c_link:     dd 0
c_nt:       dd 0
c_busy_old: dd 0
c_busy_new: dd 0
d_runs:     dd 0
d_link:     dd 0
d_nt:       dd 0
d_esp:      dd 0
e_runs:     dd 0
e_err:      dd 0
e_esp:      dd 0
e_eip:      dd 0
e_resume:   dd 0
g_err:      dd 0
g_link:     dd 0
t16_ax:     dd 0
h_err:      dd 0
h_eip:      dd 0
h_resumed:  dd 0
r3_vec:     dd 0
r3_err:     dd 0
align 8
ldtB:       dq 0, 0
tssB:       times 0x68 db 0
tssC:       times 0x68 db 0
tssD:       times 0x68 db 0
tssE:       times 0x68 db 0
tssF:       times 0x68 db 0
tssG:       times 0x68 db 0
tssS:       times 0x68 db 0
tss16:      times 0x2C db 0
tssH:       times 0x68 db 0
align 16
            times 256 db 0
stackB_top:
            times 256 db 0
stackC_top:
            times 256 db 0
stackD_top:
            times 256 db 0
stackE_top:
            times 256 db 0
stackG_top:
            times 256 db 0
stackH_top:
