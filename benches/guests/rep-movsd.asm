; rep-movsd: REP MOVSD copying 64 KiB (16,384 dwords, one instruction) from
; one buffer to another, ITER times.
; insns: 6*ITER + 2
; bytes: 65536*ITER
%ifndef ITER
%define ITER 8000
%endif
%include "frame.inc"
kernel:
    mov ebp, ITER
.outer:
    mov esi, src
    mov edi, dst
    mov ecx, 16384
    rep movsd
    dec ebp
    jnz .outer
    ret

section .bss
alignb 4096
src: resb 65536
dst: resb 65536
