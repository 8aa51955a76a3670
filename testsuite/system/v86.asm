; Virtual-8086 mode: entry through IRET, real-mode addressing, the
; IOPL-sensitive instructions (INT n, CLI, STI, PUSHF, POPF, IRET), the TSS
; I/O permission bitmap, the virtual-mode extensions (CR4.VME: VIF and the
; interrupt redirection bitmap; CR4.PVI at CPL 3) and the way back to the
; ring-0 monitor (Intel SDM Vol. 3A, chapter 20).
%include "lib.inc"

V86_CS  equ 0x0800          ; V86 code and data segment: linear = offset + 0x8000
V86_SS  equ 0x3000
V86_SP  equ 0xFFF0
V86_ES  equ 0x1111
V86_FS  equ 0x2222
V86_GS  equ 0x3333
%define V(x) ((x) - 0x8000)

EFL_IF  equ 1 << 9
EFL_TF  equ 1 << 8
IOPL3   equ 3 << 12
EFL_VM  equ 1 << 17
EFL_VIF equ 1 << 19
EFL_VIP equ 1 << 20

TSS2    equ 0x20000         ; TSS with redirection and I/O bitmaps
IOMAP   equ 0x88            ; I/O map base; redirection bitmap at 0x68
SEL_TSS2 equ SEL_FREE

; The frame a ring-0 handler sees on entry from V86 (after any error code).
F_EIP   equ 0
F_CS    equ 4
F_EFL   equ 8
F_ESP   equ 12
F_SS    equ 16
F_ES    equ 20
F_DS    equ 24
F_FS    equ 28
F_GS    equ 32

; V86_RUN code, eflags: run V86 code at V86_CS:V(code) with `eflags`
; (VM is added) until it traps to the monitor.
%macro V86_RUN 2
    mov eax, V(%1)
    mov ebx, %2
    call v86_call
%endmacro

; v86_call: EAX = IP, EBX = EFLAGS. Returns when a handler below exits.
v86_call:
    pushad
    mov [ring0_esp], esp
    mov dword [v_vector], -1
    mov dword [v_error], -1
    push dword V86_GS
    push dword V86_FS
    push dword V86_CS           ; DS
    push dword V86_ES
    push dword V86_SS
    push dword V86_SP
    or ebx, EFL_VM | 2
    push ebx
    push dword V86_CS
    push eax
    iretd

; #GP from V86 (or anything else while these tests run): record and exit.
v86_gp:
    mov [ss:v_eax], eax
    cmp dword [ss:v_emulate], 0
    je .record
    ; Monitor mode: emulate CLI (clear the virtual IF) and resume V86.
    push ebx
    movzx eax, word [ss:esp + 12]       ; CS
    shl eax, 4
    add eax, [ss:esp + 8]               ; + EIP
    cmp byte [ss:eax], 0xFA
    pop ebx
    jne .record
    inc dword [ss:v_emulated]
    inc dword [ss:esp + 4]              ; past the CLI
    mov eax, [ss:v_eax]
    add esp, 4                          ; the error code
    iretd
.record:
    mov dword [ss:v_vector], 13
    pop dword [ss:v_error]
    jmp v86_record
; INT 0x41 through the IDT from V86 (DPL-3 interrupt gate).
v86_int41:
    mov [ss:v_eax], eax
    mov dword [ss:v_vector], 0x41
v86_record:
    xor eax, eax
    mov ax, ds
    mov [ss:v_hds], eax
    mov ax, es
    mov [ss:v_hsegs], eax
    mov ax, fs
    or [ss:v_hsegs], eax
    mov ax, gs
    or [ss:v_hsegs], eax
    pushfd
    pop dword [ss:v_heflags]
    push ecx
    xor ecx, ecx
.copy:
    mov eax, [ss:esp + 4 + ecx * 4]
    mov [ss:v_frame + ecx * 4], eax
    inc ecx
    cmp ecx, 9
    jb .copy
    pop ecx
v86_exit:
    mov ax, SEL_DATA0
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov esp, [ring0_esp]
    popad
    ret

align 4
v_vector:   dd 0
v_error:    dd 0
v_eax:      dd 0
v_hds:      dd 0
v_hsegs:    dd 0
v_heflags:  dd 0
v_frame:    times 9 dd 0
v_marker:   dd 0
v_flags:    dd 0
r3_flags:   dd 0
v_emulate:  dd 0
v_emulated: dd 0

; Ring 3 (PVI): STI, then record EFLAGS.
r3_sti:
    sti
    pushfd
    pop dword [ss:r3_flags]
    ret

; ------------------------------------------------------------- V86 code
bits 16
v86_basic:
    mov word [V(v_marker)], 0x1234
    mov ax, 0x1000
    mov es, ax
    mov byte [es:0x10], 0x5A    ; linear 0x10010
.hlt:
    hlt
v86_int_n:
    int 0x41
.hlt:
    hlt
v86_cli:
    cli
.hlt:
    hlt
v86_sti:
    sti
.hlt:
    hlt
v86_pushf:
    pushf
    hlt
v86_popf:
    push word 0
.popf:
    popf
.hlt:
    hlt
v86_iret:
    push word 0
    push cs
    push word V(.target)
.iret:
    iret
.target:
    hlt
v86_int3:
    int3
    hlt
v86_in_ok:
    in al, 0x80
    out 0x80, al
.hlt:
    hlt
v86_in_denied:
    in al, 0x84
    hlt
v86_in_straddle:
    in ax, 0x83
    hlt
v86_in_dx:
    mov dx, 0x84
.in:
    in al, dx
    hlt
v86_int42:
    int 0x42
.hlt:
    hlt
v86_int42_handler:              ; reached through the V86 IVT (VME redirection)
    mov word [V(v_marker)], 0x4242
    mov bp, sp
    mov ax, [bp + 4]            ; the pushed FLAGS
    mov [V(v_flags)], ax
    iret
v86_vif:
    sti
    pushf
    pop ax
    mov [V(v_flags)], ax
.hlt:
    hlt
v86_vif_cli:
    cli
    pushf
    pop ax
    mov [V(v_flags)], ax
    hlt
v86_popf_if:
    push word EFL_IF
.popf:
    popf
    hlt
v86_popf_tf:
    push word EFL_TF
.popf:
    popf
    hlt
v86_pushfd:
    pushfd
    hlt
v86_emulated_cli:
    cli
    mov word [V(v_marker)], 0x7777
.hlt:
    hlt
v86_limit:
    mov ax, [0xFFFF]
    hlt
v86_outsb:
    mov si, 0
    mov dx, 0x84
.outsb:
    outsb
    hlt
bits 32

test_main:
    ; A TSS with a redirection bitmap and an I/O bitmap for ports 0-0x3FF.
    mov edi, TSS2
    mov ecx, (IOMAP + 129) / 4 + 1
    xor eax, eax
    rep stosd
    mov dword [TSS2 + 4], STACK_TSS
    mov dword [TSS2 + 8], SEL_DATA0
    mov word [TSS2 + 0x66], IOMAP
    mov byte [TSS2 + IOMAP + 128], 0xFF
    or byte [TSS2 + IOMAP + 0x84 / 8], 1 << (0x84 % 8)   ; port 0x84 denied
    or byte [TSS2 + 0x68 + 0x41 / 8], 1 << (0x41 % 8)    ; INT 0x41 not redirected
    mov eax, SEL_TSS2 / 8
    mov ebx, TSS2
    mov ecx, IOMAP + 128
    mov edx, 0x0089
    call set_descriptor
    mov ax, SEL_TSS2
    ltr ax
    ; Handlers: #GP and INT 0x41 (DPL 3) go to the monitor.
    mov eax, 13
    mov ebx, v86_gp
    mov ecx, SEL_CODE0
    mov edx, 0x8E00
    call set_gate
    mov eax, 0x41
    mov ebx, v86_int41
    mov edx, 0xEE00
    call set_gate
    ; V86 IVT entry for INT 0x42.
    mov word [0x42 * 4], V(v86_int42_handler)
    mov word [0x42 * 4 + 2], V86_CS

    ; ------------------------------------------------ entry and addressing
    V86_RUN v86_basic, 0
    CHECK_EQ "V86 code ran (DS-relative write)", [v_marker], 0x1234
    CHECK_EQ "V86 real-mode addressing (ES = 0x1000)", [0x10010], 0x5A
    CHECK_EQ "HLT in V86 is #GP", [v_vector], 13
    CHECK_EQ "HLT in V86: error code 0", [v_error], 0
    CHECK_EQ "frame EIP is the HLT", [v_frame + F_EIP], V(v86_basic.hlt)
    CHECK_EQ "frame CS", [v_frame + F_CS], V86_CS
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VM
    CHECK_EQ "frame EFLAGS has VM", eax, EFL_VM
    CHECK_EQ "frame ES", [v_frame + F_ES], 0x1000
    CHECK_EQ "frame DS", [v_frame + F_DS], V86_CS
    CHECK_EQ "frame FS", [v_frame + F_FS], V86_FS
    CHECK_EQ "frame GS", [v_frame + F_GS], V86_GS
    CHECK_EQ "frame SS", [v_frame + F_SS], V86_SS
    CHECK_EQ "frame ESP", [v_frame + F_ESP], V86_SP
    CHECK_EQ "handler: DS zeroed", [v_hds], 0
    CHECK_EQ "handler: ES, FS, GS zeroed", [v_hsegs], 0
    mov eax, [v_heflags]
    and eax, EFL_VM
    CHECK_EQ "handler runs with VM clear", eax, 0
    xor eax, eax
    mov ax, cs
    CHECK_EQ "back in the ring-0 monitor", eax, SEL_CODE0

    ; ---------------------------------------------------- INT n and IOPL
    V86_RUN v86_int_n, 0
    CHECK_EQ "INT n, IOPL 0: #GP", [v_vector], 13
    CHECK_EQ "INT n, IOPL 0: error code 0", [v_error], 0
    CHECK_EQ "INT n, IOPL 0: EIP at INT", [v_frame + F_EIP], V(v86_int_n)
    CHECK_EQ "INT n, IOPL 0: frame ES", [v_frame + F_ES], V86_ES
    V86_RUN v86_int_n, IOPL3
    CHECK_EQ "INT n, IOPL 3: through the IDT", [v_vector], 0x41
    CHECK_EQ "INT n, IOPL 3: EIP after INT", [v_frame + F_EIP], V(v86_int_n.hlt)
    CHECK_EQ "INT n, IOPL 3: frame ES", [v_frame + F_ES], V86_ES
    CHECK_EQ "INT n, IOPL 3: frame DS", [v_frame + F_DS], V86_CS
    CHECK_EQ "INT n, IOPL 3: frame FS", [v_frame + F_FS], V86_FS
    CHECK_EQ "INT n, IOPL 3: frame GS", [v_frame + F_GS], V86_GS
    CHECK_EQ "INT n, IOPL 3: frame SS", [v_frame + F_SS], V86_SS
    CHECK_EQ "INT n, IOPL 3: handler DS zeroed", [v_hds], 0
    CHECK_EQ "INT n, IOPL 3: handler ES/FS/GS zeroed", [v_hsegs], 0
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VM | IOPL3
    CHECK_EQ "INT n, IOPL 3: pushed EFLAGS", eax, EFL_VM | IOPL3
    V86_RUN v86_int3, 0
    CHECK_EQ "INT3 is not IOPL-sensitive (DPL-0 gate: #GP)", [v_vector], 13
    CHECK_EQ "INT3 through a DPL-0 gate: error code", [v_error], 3 * 8 + 2

    ; ------------------------------------------- CLI STI PUSHF POPF IRET
    V86_RUN v86_cli, 0
    CHECK_EQ "CLI, IOPL 0: #GP at CLI", [v_frame + F_EIP], V(v86_cli)
    V86_RUN v86_sti, 0
    CHECK_EQ "STI, IOPL 0: #GP at STI", [v_frame + F_EIP], V(v86_sti)
    V86_RUN v86_pushf, 0
    CHECK_EQ "PUSHF, IOPL 0: #GP at PUSHF", [v_frame + F_EIP], V(v86_pushf)
    V86_RUN v86_popf, 0
    CHECK_EQ "POPF, IOPL 0: #GP at POPF", [v_frame + F_EIP], V(v86_popf.popf)
    V86_RUN v86_iret, 0
    CHECK_EQ "IRET, IOPL 0: #GP at IRET", [v_frame + F_EIP], V(v86_iret.iret)
    V86_RUN v86_cli, IOPL3
    CHECK_EQ "CLI, IOPL 3: runs", [v_frame + F_EIP], V(v86_cli.hlt)
    V86_RUN v86_sti, IOPL3
    CHECK_EQ "STI, IOPL 3: runs", [v_frame + F_EIP], V(v86_sti.hlt)
    mov eax, [v_frame + F_EFL]
    and eax, EFL_IF
    CHECK_EQ "STI, IOPL 3: sets IF", eax, EFL_IF
    V86_RUN v86_pushf, IOPL3
    CHECK_EQ "PUSHF, IOPL 3: runs", [v_frame + F_ESP], V86_SP - 2
    V86_RUN v86_popf, IOPL3
    CHECK_EQ "POPF, IOPL 3: runs", [v_frame + F_EIP], V(v86_popf.hlt)
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VM | IOPL3
    CHECK_EQ "POPF, IOPL 3: keeps VM and IOPL", eax, EFL_VM | IOPL3
    V86_RUN v86_iret, IOPL3
    CHECK_EQ "IRET, IOPL 3: returns", [v_frame + F_EIP], V(v86_iret.target)

    ; A monitor emulating CLI returns into V86 with IRETD from its frame.
    mov dword [v_emulate], 1
    mov dword [v_marker], 0
    V86_RUN v86_emulated_cli, 0
    mov dword [v_emulate], 0
    CHECK_EQ "monitor emulates CLI and IRETs back to V86", [v_emulated], 1
    CHECK_EQ "V86 continues after the emulated CLI", [v_marker], 0x7777
    CHECK_EQ "... and traps again at HLT", [v_frame + F_EIP], V(v86_emulated_cli.hlt)
    CHECK_EQ "... with its segments intact", [v_frame + F_FS], V86_FS

    ; Real-mode limits apply in V86: a word at offset 0xFFFF is #GP(0).
    V86_RUN v86_limit, IOPL3
    CHECK_EQ "V86 word at offset 0xFFFF: #GP", [v_vector], 13
    CHECK_EQ "V86 word at offset 0xFFFF: EIP", [v_frame + F_EIP], V(v86_limit)

    ; ------------------------------------------------------ I/O bitmap
    mov dword [v_eax], 0
    V86_RUN v86_in_ok, 0
    CHECK_EQ "I/O: allowed port runs", [v_frame + F_EIP], V(v86_in_ok.hlt)
    mov eax, [v_eax]
    and eax, 0xFF
    CHECK_EQ "I/O: IN from allowed port", eax, 0xFF
    V86_RUN v86_in_denied, 0
    CHECK_EQ "I/O: denied port #GP", [v_frame + F_EIP], V(v86_in_denied)
    CHECK_EQ "I/O: denied port error code", [v_error], 0
    V86_RUN v86_in_denied, IOPL3
    CHECK_EQ "I/O: bitmap applies at IOPL 3 too", [v_frame + F_EIP], V(v86_in_denied)
    V86_RUN v86_in_straddle, 0
    CHECK_EQ "I/O: word straddling a denied port", [v_frame + F_EIP], V(v86_in_straddle)
    V86_RUN v86_in_dx, 0
    CHECK_EQ "I/O: IN AL, DX denied", [v_frame + F_EIP], V(v86_in_dx.in)
    V86_RUN v86_outsb, IOPL3
    CHECK_EQ "I/O: OUTSB to a denied port", [v_frame + F_EIP], V(v86_outsb.outsb)

    ; ------------------------------------------------------------ VME
    mov eax, cr4
    or eax, 1                   ; CR4.VME
    mov cr4, eax
    mov dword [v_marker], 0
    V86_RUN v86_int42, 0
    CHECK_EQ "VME: INT redirected to the V86 IVT", [v_marker], 0x4242
    CHECK_EQ "VME: IRET back, then HLT", [v_frame + F_EIP], V(v86_int42.hlt)
    mov eax, [v_flags]
    and eax, IOPL3
    CHECK_EQ "VME: pushed FLAGS has IOPL 3", eax, IOPL3
    V86_RUN v86_int_n, 0
    mov dword [v_marker], 0
    V86_RUN v86_int42, IOPL3 | EFL_IF
    CHECK_EQ "VME, IOPL 3: INT redirected", [v_marker], 0x4242
    mov eax, [v_flags]
    and eax, EFL_IF
    CHECK_EQ "VME, IOPL 3: pushed FLAGS has the real IF", eax, EFL_IF
    mov eax, [v_frame + F_EFL]
    and eax, EFL_IF
    CHECK_EQ "VME, IOPL 3: IRET restored IF", eax, EFL_IF
    V86_RUN v86_int_n, 0
    CHECK_EQ "VME: INT with bitmap bit set, IOPL 0: #GP", [v_vector], 13
    CHECK_EQ "VME: ... at the INT", [v_frame + F_EIP], V(v86_int_n)
    V86_RUN v86_int_n, IOPL3
    CHECK_EQ "VME: INT with bitmap bit set, IOPL 3: IDT", [v_vector], 0x41
    V86_RUN v86_vif, 0
    CHECK_EQ "VME: STI does not fault", [v_frame + F_EIP], V(v86_vif.hlt)
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VIF | EFL_IF
    CHECK_EQ "VME: STI sets VIF, not IF", eax, EFL_VIF
    mov eax, [v_flags]
    and eax, EFL_IF | IOPL3
    CHECK_EQ "VME: PUSHF shows IF = VIF, IOPL 3", eax, EFL_IF | IOPL3
    V86_RUN v86_vif_cli, EFL_VIF
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VIF
    CHECK_EQ "VME: CLI clears VIF", eax, 0
    mov eax, [v_flags]
    and eax, EFL_IF
    CHECK_EQ "VME: PUSHF after CLI shows IF = 0", eax, 0
    V86_RUN v86_popf_if, 0
    mov eax, [v_frame + F_EFL]
    and eax, EFL_VIF | EFL_IF
    CHECK_EQ "VME: POPF IF=1 sets VIF", eax, EFL_VIF
    V86_RUN v86_popf_tf, 0
    CHECK_EQ "VME: POPF with TF set is #GP", [v_frame + F_EIP], V(v86_popf_tf.popf)
    V86_RUN v86_sti, EFL_VIP
    CHECK_EQ "VME: STI with VIP pending is #GP", [v_frame + F_EIP], V(v86_sti)
    V86_RUN v86_popf_if, EFL_VIP
    CHECK_EQ "VME: POPF IF=1 with VIP pending is #GP", [v_frame + F_EIP], V(v86_popf_if.popf)
    V86_RUN v86_pushfd, 0
    CHECK_EQ "VME: 32-bit PUSHFD at IOPL 0 is #GP", [v_frame + F_EIP], V(v86_pushfd)
    mov eax, cr4
    and eax, ~1
    mov cr4, eax

    ; ----------------------------------------------- PVI (CPL 3, IOPL 0)
    mov eax, 13                 ; the frame's own #GP stub again
    mov ebx, isr_13
    mov ecx, SEL_CODE0
    mov edx, 0x8E00
    call set_gate
    RING3_EXPECT "CLI at CPL 3 without PVI is #GP", 13, 0, cli
    mov eax, cr4
    or eax, 2                   ; CR4.PVI
    mov cr4, eax
    RING3_EXPECT "PVI: CLI at CPL 3 does not fault", -1, -1, cli
    RING3_EXPECT "PVI: STI sets VIF", -1, -1, {call r3_sti}
    mov eax, [r3_flags]
    and eax, EFL_VIF | EFL_IF
    CHECK_EQ "PVI: STI changed VIF, not IF", eax, EFL_VIF
    mov eax, cr4
    and eax, ~2
    mov cr4, eax
    ret
