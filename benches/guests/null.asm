; null: returns at once. Measures each emulator's start-up and shutdown
; (QEMU's includes SeaBIOS and its Multiboot option ROM).
; insns: 1
%include "frame.inc"
kernel:
    ret
