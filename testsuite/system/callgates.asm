; Call gates and privilege checks on far transfers: CALL through a gate to
; ring 0 with parameter copy and the inner-stack frame, RET imm16 to the
; outer level (and the nulling of data segments), conforming code, gate DPL
; and present checks, JMP through gates, direct far JMP/CALL/RET privilege
; errors (Intel SDM Vol. 3A, 5.8; Vol. 2A "CALL", "JMP", "RET").
%include "lib.inc"

SEL_GATE_UP   equ SEL_FREE + 0x00   ; DPL 3 -> code0:gate_up, 2 params
SEL_GATE_DPL0 equ SEL_FREE + 0x08   ; DPL 0 -> code0:call_target
SEL_GATE_NP   equ SEL_FREE + 0x10   ; DPL 3, not present
SEL_CONF0     equ SEL_FREE + 0x18   ; conforming code, DPL 0
SEL_GATE_CONF equ SEL_FREE + 0x20   ; DPL 3 -> conf0:conf_target
SEL_GATE_JMP  equ SEL_FREE + 0x28   ; DPL 3 -> code0:jmp_target
SEL_CONF3     equ SEL_FREE + 0x30   ; conforming code, DPL 3
SEL_GATE_CALL equ SEL_FREE + 0x38   ; DPL 3 -> code0:call_target, 0 params
SEL_CODE_NP   equ SEL_FREE + 0x40   ; ring-0 code, not present
SEL_GATE_DATA equ SEL_FREE + 0x48   ; DPL 3 -> a data segment
SEL_GATE_CNP  equ SEL_FREE + 0x50   ; DPL 3 -> not-present code
SEL_GATE_C3   equ SEL_FREE + 0x58   ; DPL 3 -> code3:r3_target (same level)

; Ring-3 snippets start with R3_FAULT and end by jumping to r3_back,
; which stores the fault seen (or -1) in r3_vec / r3_err.
%macro R3_FAULT 0
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov dword [resume_at], r3_back
%endmacro

test_main:
    CALLGATE SEL_GATE_UP, SEL_CODE0, gate_up, 0xEC, 2
    CALLGATE SEL_GATE_DPL0, SEL_CODE0, call_target, 0x8C, 0
    CALLGATE SEL_GATE_NP, SEL_CODE0, call_target, 0x6C, 0
    DESC SEL_CONF0 / 8, 0, 0xFFFFF, 0xC09E
    CALLGATE SEL_GATE_CONF, SEL_CONF0, conf_target, 0xEC, 0
    CALLGATE SEL_GATE_JMP, SEL_CODE0, jmp_target, 0xEC, 0
    DESC SEL_CONF3 / 8, 0, 0xFFFFF, 0xC0FE
    CALLGATE SEL_GATE_CALL, SEL_CODE0, call_target, 0xEC, 0
    DESC SEL_CODE_NP / 8, 0, 0xFFFFF, 0xC01A
    CALLGATE SEL_GATE_DATA, SEL_DATA0, call_target, 0xEC, 0
    CALLGATE SEL_GATE_CNP, SEL_CODE_NP, call_target, 0xEC, 0
    CALLGATE SEL_GATE_C3, SEL_CODE3, r3_target, 0xEC, 0

    ; -------------------------- ring 3 -> ring 0 with two parameters
    mov eax, r3_call_up
    call ring3_call
    CHECK_EQ "gate call: CS is the ring-0 code", [up_cs], SEL_CODE0
    CHECK_EQ "gate call: SS from TSS.SS0", [up_ss], SEL_DATA0
    CHECK_EQ "gate call: ESP from TSS.ESP0 minus 6 dwords", [up_esp], STACK_TSS - 24
    CHECK_EQ "gate call: pushed EIP", [up_frame], r3_call_up_ret
    CHECK_EQ "gate call: pushed CS", [up_frame + 4], SEL_CODE3
    CHECK_EQ "gate call: parameter at ESP+8 (last pushed)", [up_frame + 8], 0x2222
    CHECK_EQ "gate call: parameter at ESP+12 (first pushed)", [up_frame + 12], 0x1111
    CHECK_EQ "gate call: pushed outer ESP", [up_frame + 16], [r3_esp_call]
    CHECK_EQ "gate call: pushed outer SS", [up_frame + 20], SEL_DATA3
    CHECK_EQ "RET 8 to ring 3: CS", [r3_cs], SEL_CODE3
    CHECK_EQ "RET 8 to ring 3: SS", [r3_ss], SEL_DATA3
    mov eax, [r3_esp_call]
    add eax, 8
    CHECK_EQ "RET 8 to ring 3: outer parameters released", [r3_esp_after], eax
    CHECK_EQ "RET to ring 3: ES (ring-0 data) nulled", [r3_es], 0
    CHECK_EQ "RET to ring 3: GS (ring-0 data) nulled", [r3_gs], 0
    CHECK_EQ "RET to ring 3: FS (ring-3 data) kept", [r3_fs], SEL_DATA3
    CHECK_EQ "RET to ring 3: DS (ring-3 data) kept", [r3_ds], SEL_DATA3

    ; ------------------------------------------------- conforming code
    mov eax, r3_conf
    call ring3_call
    CHECK_EQ "gate to conforming code: CPL stays 3", [conf_cs], SEL_CONF0 | 3
    CHECK_EQ "gate to conforming code: same stack", [conf_esp], [r3_esp_call]
    CHECK_EQ "gate to conforming code: SS unchanged", [conf_ss], SEL_DATA3
    CHECK_EQ "direct call to conforming code: CS RPL = CPL", [conf_cs2], SEL_CONF0 | 3
    mov eax, r3_gate_same
    call ring3_call
    CHECK_EQ "gate to ring-3 code from ring 3: CS", [r3t_cs], SEL_CODE3
    CHECK_EQ "gate at the same level: no stack switch", [r3t_esp], [r3_esp_call]
    call SEL_CONF0:conf_target
    CHECK_EQ "ring 0 calls conforming DPL-0 code", [conf_cs], SEL_CONF0

    ; ----------------------------------------- gate checks in ring 3
    mov eax, r3_gate_dpl
    call ring3_call
    CHECK_EQ "ring 3: call gate DPL 0 -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: gate DPL error code", [r3_err], SEL_GATE_DPL0
    mov eax, r3_gate_np
    call ring3_call
    CHECK_EQ "ring 3: not-present gate -> #NP", [r3_vec], 11
    CHECK_EQ "ring 3: not-present gate error code", [r3_err], SEL_GATE_NP
    mov eax, r3_jmp_gate_up
    call ring3_call
    CHECK_EQ "ring 3: JMP through a gate to ring 0 -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: JMP gate error code (code selector)", [r3_err], SEL_CODE0
    mov eax, r3_jmp_gate_conf
    call ring3_call
    CHECK_EQ "ring 3: JMP through a gate to conforming code", [conf_cs], SEL_CONF0 | 3
    mov eax, r3_far_jmp0
    call ring3_call
    CHECK_EQ "ring 3: far JMP to ring-0 code -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: far JMP error code", [r3_err], SEL_CODE0
    mov eax, r3_far_call0
    call ring3_call
    CHECK_EQ "ring 3: far CALL to ring-0 code -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: far CALL error code", [r3_err], SEL_CODE0
    mov eax, r3_retf_in
    call ring3_call
    CHECK_EQ "ring 3: far RET to ring 0 -> #GP", [r3_vec], 13
    CHECK_EQ "ring 3: far RET error code", [r3_err], SEL_CODE0
    mov eax, r3_gate_rpl
    call ring3_call
    CHECK_EQ "ring 3: gate with no parameters, RETF outward", [r3_vec], -1
    CHECK_EQ "ring 3: that gate ran ring-0 code", [call_cs], SEL_CODE0

    ; ------------------------------------------------- gates in ring 0
    mov [esp_before], esp
    jmp SEL_GATE_JMP:0x1234
jmp_back:
    CHECK_EQ "JMP through a gate: CS", [jmp_cs], SEL_CODE0
    CHECK_EQ "JMP through a gate: nothing pushed", [jmp_esp], [esp_before]
    call SEL_GATE_CALL:0
    CHECK_EQ "CALL through a gate at the same level: CS", [call_cs], SEL_CODE0
    mov eax, [esp_before]
    sub eax, 8
    CHECK_EQ "same-level gate call pushes CS:EIP only", [call_esp], eax
    EXPECT_FAULT "gate selector RPL 3 > gate DPL 0 -> #GP", 13, SEL_GATE_DPL0
    call (SEL_GATE_DPL0 | 3):0
    END_FAULT
    call SEL_GATE_DPL0:0
    CHECK_EQ "DPL-0 gate from ring 0", [call_cs], SEL_CODE0
    EXPECT_FAULT "gate to a data segment -> #GP(target)", 13, SEL_DATA0
    call SEL_GATE_DATA:0
    END_FAULT
    EXPECT_FAULT "gate to not-present code -> #NP(target)", 11, SEL_CODE_NP
    call SEL_GATE_CNP:0
    END_FAULT
    ; A gate to ring-3 code from ring 0: CALL may not go outward.
    EXPECT_FAULT "CALL gate to less privileged code -> #GP", 13, SEL_CODE3 & ~3
    call SEL_GATE_C3:0
    END_FAULT

    ; ------------------------------------ direct transfers in ring 0
    EXPECT_FAULT "far JMP to ring-3 code -> #GP", 13, SEL_CODE3 & ~3
    jmp SEL_CODE3:r3_target
    END_FAULT
    EXPECT_FAULT "far CALL with RPL 3 to ring-0 code -> #GP", 13, SEL_CODE0
    call (SEL_CODE0 | 3):call_target
    END_FAULT
    EXPECT_FAULT "far CALL to conforming DPL-3 code -> #GP", 13, SEL_CONF3
    call SEL_CONF3:conf_target
    END_FAULT
    EXPECT_FAULT "far JMP to not-present code -> #NP", 11, SEL_CODE_NP
    jmp SEL_CODE_NP:0
    END_FAULT
    EXPECT_FAULT "far JMP to a data segment -> #GP", 13, SEL_DATA0
    jmp SEL_DATA0:0
    END_FAULT
    EXPECT_FAULT "far JMP beyond the limit -> #GP(0)", 13, 0
    jmp SEL_CODE16:0x12345
    END_FAULT
    EXPECT_FAULT "far JMP to the null selector -> #GP(0)", 13, 0
    jmp 0:0
    END_FAULT
    EXPECT_FAULT "far RET to a null CS -> #GP(0)", 13, 0
    push dword 0
    push dword 0
    retf
    END_FAULT
    mov esp, [esp_before]
    ; Outward returns check the new SS against the new CPL.
    EXPECT_FAULT "RETF to ring 3 with an RPL-0 SS -> #GP(SS)", 13, SEL_DATA0
    push dword SEL_DATA0
    push dword STACK3
    push dword SEL_CODE3
    push dword r3_target
    retf
    END_FAULT
    mov esp, [esp_before]
    EXPECT_FAULT "IRET to ring 3 with a code segment as SS -> #GP(SS)", 13, SEL_CODE3 & ~3
    push dword SEL_CODE3
    push dword STACK3
    pushfd
    push dword SEL_CODE3
    push dword r3_target
    iretd
    END_FAULT
    mov esp, [esp_before]
    CHECK_EQ "faulting outward returns kept CPL 0", cs, SEL_CODE0
    ret

; ----------------------------------------------------- ring-0 targets
gate_up:
    mov eax, cs
    mov [ss:up_cs], eax
    mov eax, ss
    mov [ss:up_ss], eax
    mov [ss:up_esp], esp
    mov ecx, 6
    xor ebx, ebx
.copy:
    mov eax, [esp + ebx * 4]
    mov [ss:up_frame + ebx * 4], eax
    inc ebx
    loop .copy
    mov ax, SEL_DATA0
    mov es, ax
    mov gs, ax
    mov ax, SEL_DATA3
    mov fs, ax
    retf 8

conf_target:
    mov eax, cs
    mov [ss:conf_cs], eax
    mov eax, ss
    mov [ss:conf_ss], eax
    mov [ss:conf_esp], esp
    retf

jmp_target:
    mov eax, cs
    mov [jmp_cs], eax
    mov [jmp_esp], esp
    jmp jmp_back

call_target:
    mov eax, cs
    mov [ss:call_cs], eax
    mov [ss:call_esp], esp
    retf

; ---------------------------------------------------- ring-3 snippets
r3_call_up:
    push dword 0x1111
    push dword 0x2222
    mov [r3_esp_call], esp
    call (SEL_GATE_UP | 3):0xDEAD       ; the offset is ignored
r3_call_up_ret:
    mov [r3_esp_after], esp
    mov eax, cs
    mov [r3_cs], eax
    mov eax, ss
    mov [r3_ss], eax
    mov eax, ds
    mov [r3_ds], eax
    mov eax, es
    mov [r3_es], eax
    mov eax, fs
    mov [r3_fs], eax
    mov eax, gs
    mov [r3_gs], eax
    int 0x80

r3_conf:
    mov [r3_esp_call], esp
    sub dword [r3_esp_call], 8
    call (SEL_GATE_CONF | 3):0
    call SEL_CONF0:conf_target
    mov eax, [conf_cs]
    mov [conf_cs2], eax
    call (SEL_GATE_CONF | 3):0
    int 0x80

r3_gate_same:
    mov [r3_esp_call], esp
    sub dword [r3_esp_call], 8
    call (SEL_GATE_C3 | 3):0
    int 0x80

r3_target:
    mov eax, cs
    mov [r3t_cs], eax
    lea eax, [esp]
    mov [r3t_esp], eax
    retf

r3_gate_dpl:
    R3_FAULT
    call (SEL_GATE_DPL0 | 3):0
    jmp r3_back
r3_gate_np:
    R3_FAULT
    call (SEL_GATE_NP | 3):0
    jmp r3_back
r3_jmp_gate_up:
    R3_FAULT
    jmp (SEL_GATE_JMP | 3):0
    jmp r3_back
r3_jmp_gate_conf:
    mov dword [conf_cs], 0
    push dword SEL_CODE3            ; conf_target RETFs: give it a frame
    push dword .back
    jmp (SEL_GATE_CONF | 3):0
.back:
    int 0x80
r3_far_jmp0:
    R3_FAULT
    jmp SEL_CODE0:call_target
    jmp r3_back
r3_far_call0:
    R3_FAULT
    call SEL_CODE0:call_target
    jmp r3_back
r3_retf_in:
    R3_FAULT
    push dword SEL_CODE0
    push dword call_target
    retf
    jmp r3_back
r3_gate_rpl:
    R3_FAULT
    mov dword [call_cs], 0
    call (SEL_GATE_CALL | 3):0      ; outward return from call_target
    jmp r3_back
r3_back:
    mov dword [resume_at], 0
    mov eax, [last_vector]
    mov [r3_vec], eax
    mov eax, [last_error]
    mov [r3_err], eax
    int 0x80

align 4
esp_before:     dd 0
up_cs:          dd 0
up_ss:          dd 0
up_esp:         dd 0
up_frame:       times 6 dd 0
r3_esp_call:    dd 0
r3_esp_after:   dd 0
r3_cs:          dd 0
r3_ss:          dd 0
r3_ds:          dd 0
r3_es:          dd 0
r3_fs:          dd 0
r3_gs:          dd 0
conf_cs:        dd 0
conf_cs2:       dd 0
conf_ss:        dd 0
conf_esp:       dd 0
r3t_cs:         dd 0
r3t_esp:        dd 0
jmp_cs:         dd 0
jmp_esp:        dd 0
call_cs:        dd 0
call_esp:       dd 0
r3_vec:         dd 0
r3_err:         dd 0
