; branches: a linear congruential generator drives four conditional
; branches per iteration on different bits, so about half of them go each
; way in no pattern a predictor learns. Each if/else has arms of equal
; length (the JZ, then three instructions, a JMP counted in the not-taken
; arm), so the count is exact whichever way a branch goes.
; insns: 24*ITER + 3
%ifndef ITER
%define ITER 30000000
%endif
%include "frame.inc"

; One balanced branch on bit %1 of EAX: 5 instructions either way.
%macro BRANCH 1
    test eax, 1 << %1
    jz %%else
    add ebx, eax
    xor edx, ebx
    jmp %%end
%%else:
    sub ebx, 3
    xor edx, eax
    add esi, edx
%%end:
%endmacro

kernel:
    mov ecx, ITER
    mov eax, 12345
.top:
    imul eax, eax, 1103515245
    add eax, 12345
    BRANCH 16
    BRANCH 20
    BRANCH 24
    BRANCH 28
    dec ecx
    jnz .top
    ret
