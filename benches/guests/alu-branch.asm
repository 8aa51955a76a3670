; alu-branch: the `alu_branch` kernel of benches/src/lib.rs, instruction
; for instruction: ALU operations, a load and a store, a data-dependent
; branch, a call and a stack round trip per iteration.
; insns: 14*ITER + 3 .. 15*ITER + 3
; (14 per iteration, 15 when the data-dependent INC runs)
%ifndef ITER
%define ITER 40000000
%endif
%include "frame.inc"
kernel:
    mov ecx, ITER
    mov esi, array
.top:
    add eax, ecx
    xor edx, eax
    lea ebx, [eax + edx*2 + 3]
    mov [esi + 8], ebx
    sub ebx, [esi + 4]
    and ebx, 0xFF
    cmp ebx, 0x80
    jb .skip
    inc edi
.skip:
    call func
    dec ecx
    jnz .top
    ret
func:
    push ebx
    pop ebp
    ret

section .bss
alignb 4096
array: resb 4096
