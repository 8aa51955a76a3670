; calls: recursive Fibonacci, fib(25) computed ITER times: deep chains of
; CALL and RET (121,392 inner calls and 121,393 leaves per fib(25)) with
; pushes, pops and a stack load.
; An inner call retires 12 instructions (the CALL that made it included),
; a leaf 5; each outer trip adds MOV, DEC and JNZ.
; insns: (3 + 12*121392 + 5*121393)*ITER + 2
%ifndef ITER
%define ITER 300
%endif
%include "frame.inc"
kernel:
    mov ebp, ITER
.again:
    mov ecx, 25
    call fib
    dec ebp
    jnz .again
    ret

; EAX = fib(ECX); fib(0) = 0, fib(1) = 1.
fib:
    cmp ecx, 2
    jb .leaf
    push ecx
    dec ecx
    call fib
    push eax
    mov ecx, [esp + 4]
    sub ecx, 2
    call fib
    pop edx
    add eax, edx
    pop ecx
    ret
.leaf:
    mov eax, ecx
    ret
