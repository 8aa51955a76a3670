; copy-loop: a plain load/store loop copying 64 KiB (two dwords per trip)
; from one buffer to another, ITER times. Memory-bound for an emulator's
; load/store path.
; insns: (5 + 8*8192)*ITER + 2
; bytes: 65536*ITER
%ifndef ITER
%define ITER 10000
%endif
%include "frame.inc"
kernel:
    mov ebp, ITER
.outer:
    mov esi, src
    mov edi, dst
    mov ecx, 8192
.inner:
    mov eax, [esi]
    mov edx, [esi + 4]
    mov [edi], eax
    mov [edi + 4], edx
    add esi, 8
    add edi, 8
    dec ecx
    jnz .inner
    dec ebp
    jnz .outer
    ret

section .bss
alignb 4096
src: resb 65536
dst: resb 65536
