; string-ops: per trip, REP STOSD fills two 16 KiB buffers with the same
; pattern, REPE CMPSD compares them (equal: it runs to the end) and REPNE
; SCASB looks for a byte the pattern does not hold (it runs to the end).
; insns: 17*ITER + 2
; bytes: 81920*ITER
; (16 KiB stored twice, 2 x 16 KiB compared, 16 KiB scanned)
%ifndef ITER
%define ITER 8000
%endif
%include "frame.inc"
kernel:
    mov ebp, ITER
.outer:
    mov edi, buf_a
    mov ecx, 4096
    mov eax, 0x11223344
    rep stosd
    mov edi, buf_b
    mov ecx, 4096
    rep stosd
    mov esi, buf_a
    mov edi, buf_b
    mov ecx, 4096
    repe cmpsd
    mov edi, buf_a
    mov ecx, 16384
    mov al, 0x55
    repne scasb
    dec ebp
    jnz .outer
    ret

section .bss
alignb 4096
buf_a: resb 16384
buf_b: resb 16384
