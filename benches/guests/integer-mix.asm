; integer-mix: the `integer_mix` kernel of benches/src/lib.rs, instruction
; for instruction: an inner loop of ALU, IMUL, shift, load/store, a
; data-dependent branch and a call, and per outer trip a REP MOVSD of 64
; dwords and a REP STOSD of 32.
; insns: 1610*ITER + 2 .. 1710*ITER + 2
; (10 per outer trip, 16 per inner trip, 17 when the SUB runs)
%ifndef ITER
%define ITER 400000
%endif
%define INNER 100
%include "frame.inc"
kernel:
    mov ebp, ITER
.outer:
    mov ecx, INNER
    mov esi, array
    mov ebx, 1
.inner:
    add eax, ebx
    imul ebx, ebx, 3
    xor edx, eax
    shl edx, 1
    mov [esi + ecx*4], eax
    mov edi, [esi + ecx*4 - 4]
    add eax, edi
    and eax, 0xFFFF
    cmp eax, 0x8000
    jb .skip
    sub eax, 0x4000
.skip:
    call func
    dec ecx
    jnz .inner
    mov edi, strings
    mov ecx, 64
    rep movsd
    mov ecx, 32
    rep stosd
    dec ebp
    jnz .outer
    ret
func:
    push ebx
    pop ebx
    ret

section .bss
alignb 4096
array: resb 4096
strings: resb 4096
