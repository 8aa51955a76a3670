; Segmentation and privilege: segment loads and their faults, limits,
; expand-down segments, the accessed bit, ring transitions through IRET and
; an interrupt gate, LAR/LSL/VERR/VERW/ARPL (Intel SDM Vol. 3A, chapter 5).
%include "lib.inc"

test_main:
    ; A null selector loads into DS; using it faults with #GP(0).
    xor ax, ax
    mov ds, ax
    EXPECT_FAULT "null DS access", 13, 0
    mov eax, [ds:0x1000]
    END_FAULT
    mov ax, SEL_DATA0
    mov ds, ax

    ; Loading SS with a null selector is #GP(0).
    EXPECT_FAULT "null SS load", 13, 0
    xor ax, ax
    mov ss, ax
    END_FAULT

    ; A selector past the GDT limit: #GP(selector).
    EXPECT_FAULT "selector beyond GDT limit", 13, 0x1F8
    mov ax, 0x1F8
    mov es, ax
    END_FAULT

    ; A not-present data segment: #NP(selector).
    mov eax, SEL_FREE / 8
    mov ebx, 0
    mov ecx, 0xFFFFF
    mov edx, 0xC012             ; data, writable, P = 0
    call set_descriptor
    EXPECT_FAULT "not-present data segment", 11, SEL_FREE
    mov ax, SEL_FREE
    mov es, ax
    END_FAULT

    ; A byte-granular data segment of 16 bytes: offset 16 is past the limit.
    mov eax, SEL_FREE / 8 + 1
    mov ebx, 0x100000
    mov ecx, 15
    mov edx, 0x4092             ; present, writable, 32-bit, byte-granular
    call set_descriptor
    mov ax, SEL_FREE + 8
    mov es, ax
    mov dword [es:12], 0x12345678
    CHECK_EQ "write within limit", [0x10000C], 0x12345678
    EXPECT_FAULT "limit overrun (dword at 13)", 13, 0
    mov eax, [es:13]
    END_FAULT
    ; The accessed bit was set by the load.
    test byte [gdt + SEL_FREE + 8 + 5], 1
    PASS_IF nz, "accessed bit set on load"

    ; Expand-down: limit 0xFFF means offsets 0x1000-0xFFFFFFFF are valid.
    mov eax, SEL_FREE / 8 + 2
    mov ebx, 0
    mov ecx, 0xFFF
    mov edx, 0x4096             ; expand-down writable data, 32-bit
    call set_descriptor
    mov ax, SEL_FREE + 16
    mov es, ax
    mov dword [es:0x100010], 0xCAFE
    CHECK_EQ "expand-down above limit", [0x100010], 0xCAFE
    EXPECT_FAULT "expand-down at limit", 13, 0
    mov eax, [es:0xFFF]
    END_FAULT

    ; Writing through a read-only data segment: #GP(0).
    mov eax, SEL_FREE / 8 + 3
    mov ebx, 0
    mov ecx, 0xFFFFF
    mov edx, 0xC090             ; read-only data
    call set_descriptor
    mov ax, SEL_FREE + 24
    mov es, ax
    EXPECT_FAULT "write to read-only segment", 13, 0
    mov dword [es:0x100000], 1
    END_FAULT

    ; Loading a ring-0 data segment with RPL 3: #GP(selector).
    EXPECT_FAULT "RPL above DPL", 13, SEL_DATA0
    mov ax, SEL_DATA0 | 3
    mov es, ax
    END_FAULT

    ; Loading DS with an execute-only code segment: #GP(selector).
    mov eax, SEL_FREE / 8 + 4
    mov ebx, 0
    mov ecx, 0xFFFFF
    mov edx, 0xC098             ; execute-only code
    call set_descriptor
    EXPECT_FAULT "execute-only code into DS", 13, SEL_FREE + 32
    mov ax, SEL_FREE + 32
    mov ds, ax
    END_FAULT
    mov ax, SEL_DATA0
    mov ds, ax

    ; LAR / LSL / VERR / VERW.
    mov ax, SEL_CODE0
    lar eax, ax
    PASS_IF z, "LAR of code0 sets ZF"
    and eax, 0x00F0FF00
    CHECK_EQ "LAR access rights", eax, 0x00C09B00
    mov ax, SEL_FREE + 8
    lsl eax, ax
    CHECK_EQ "LSL byte-granular limit", eax, 15
    mov ax, SEL_CODE0
    lsl eax, ax
    CHECK_EQ "LSL page-granular limit", eax, 0xFFFFFFFF
    mov ax, 0x1F8
    lsl eax, ax
    PASS_IF nz, "LSL beyond GDT clears ZF"
    mov ax, SEL_FREE + 32
    verr ax
    PASS_IF nz, "VERR execute-only code fails"
    mov ax, SEL_CODE0
    verr ax
    PASS_IF z, "VERR readable code"
    mov ax, SEL_FREE + 24
    verw ax
    PASS_IF nz, "VERW read-only data fails"
    mov ax, SEL_DATA0
    verw ax
    PASS_IF z, "VERW writable data"
    mov ax, SEL_CODE3
    mov bx, SEL_DATA0
    arpl bx, ax
    PASS_IF z, "ARPL raises RPL"
    CHECK_EQ "ARPL result", ebx, (SEL_DATA0 | 3) + 0
    ; ARPL leaves EBX's upper half alone: reload to compare exactly.
    movzx ebx, bx

    ; Ring 3 and back: IRET to ring 3, then INT 0x80 through a DPL-3 gate.
    mov dword [ring3_flag], 0
    mov eax, ring3_code
    call ring3_call
    CHECK_EQ "ring 3 ran and returned", [ring3_flag], 1
    CHECK_EQ "ring 3 saw CPL 3", [ring3_cs], SEL_CODE3

    ; From ring 3: INT to a DPL-0 gate is #GP(vector*8+2).
    mov eax, ring3_int_dpl
    call ring3_call
    CHECK_EQ "INT to DPL-0 gate from ring 3", [ring3_fault], 13
    CHECK_EQ "INT DPL error code", [ring3_error], 0x40 * 8 + 2

    ; From ring 3: loading a ring-0 data segment is #GP(selector).
    mov eax, ring3_load_ring0
    call ring3_call
    CHECK_EQ "ring 3 loads ring-0 data", [ring3_fault], 13
    CHECK_EQ "ring 3 load error code", [ring3_error], SEL_DATA0
    ret

ring3_code:
    mov dword [ring3_flag], 1
    mov eax, cs
    mov [ring3_cs], eax
    int 0x80

ring3_int_dpl:
    mov dword [last_vector], -1
    mov dword [resume_at], .back
    int 0x40
.back:
    mov eax, [last_vector]
    mov [ring3_fault], eax
    mov eax, [last_error]
    mov [ring3_error], eax
    int 0x80

ring3_load_ring0:
    mov dword [last_vector], -1
    mov dword [resume_at], .back
    mov ax, SEL_DATA0
    mov es, ax
.back:
    mov eax, [last_vector]
    mov [ring3_fault], eax
    mov eax, [last_error]
    mov [ring3_error], eax
    int 0x80

ring3_flag:  dd 0
ring3_cs:    dd 0
ring3_fault: dd 0
ring3_error: dd 0
