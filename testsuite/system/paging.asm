; Paging: 32-bit paging with 4 KiB and 4 MiB (CR4.PSE) pages, page-fault
; error codes and CR2, CR0.WP, user/supervisor protection, accessed and
; dirty bits, TLB semantics (stale entries until INVLPG or a CR3 load, global
; pages with CR4.PGE), PAE paging with 2 MiB pages, NX and reserved bits
; (Intel SDM Vol. 3A, chapter 4).
%include "lib.inc"

PD      equ 0x100000        ; 32-bit page directory
PT0     equ 0x101000        ; identity map of 0-4 MiB, user, writable
PT1     equ 0x102000        ; page table for linear 0x400000-0x7FFFFF (the test pages)
PDPT    equ 0x106000        ; PAE page-directory-pointer table
PAE_PD  equ 0x107000        ; PAE page directory for 0-1 GiB
PAE_PT  equ 0x108000        ; PAE page table for linear 0x400000-0x5FFFFF
PDPT2   equ 0x10A000        ; a PDPT with a reserved bit set
PAE_PD2 equ 0x10B000        ; a second PAE page directory
DATA    equ 0x200000        ; physical test pages (identity-mapped too)

PG_P    equ 1
PG_RW   equ 2
PG_US   equ 4
PG_A    equ 0x20
PG_D    equ 0x40
PG_PS   equ 0x80
PG_G    equ 0x100

; PTE address in PT1 for linear address %1 (0x400000 <= %1 < 0x800000).
%define PTE(lin) (PT1 + (((lin) - 0x400000) >> 12) * 4)
; PAE PTE address in PAE_PT for linear address %1.
%define PAE_PTE(lin) (PAE_PT + (((lin) - 0x400000) >> 12) * 8)

; PF_CHECK "name", error: after an EXPECT-less fault, compare the recorded
; vector, error code and CR2 with #PF(error) at `lin`.
%macro PF_CHECK 3
    CHECK_EQ %1, [last_vector], 14
    %strcat %%e %1, " (error code)"
    CHECK_EQ %%e, [last_error], %2
    mov ecx, cr2
    %strcat %%c %1, " (CR2)"
    CHECK_EQ %%c, ecx, %3
%endmacro

; RING3 "name", code, error, lin: run `code` at ring 3; it must page-fault.
%macro RING3 4
    mov dword [last_vector], -1
    mov dword [last_error], -1
    mov eax, %2
    call ring3_call
    PF_CHECK %1, %3, %4
%endmacro

setup_paging:
    pushad
    mov edi, PD
    mov ecx, 0x10000 / 4
    xor eax, eax
    rep stosd
    mov edi, PT0
    mov eax, PG_P | PG_RW | PG_US
    mov ecx, 1024
.fill:
    stosd
    add eax, 0x1000
    loop .fill
    mov dword [PD], PT0 | PG_P | PG_RW | PG_US
    mov dword [PD + 4], PT1 | PG_P | PG_RW | PG_US
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    popad
    ret

; Ring-3 pieces for RING3: each resumes at r3_done after its fault.
r3_write_ro:
    mov dword [ss:resume_at], r3_done
    mov dword [0x406000], 1
    jmp r3_done
r3_read_sup:
    mov dword [ss:resume_at], r3_done
    mov eax, [0x407000]
    jmp r3_done
r3_fetch_sup:
    mov dword [ss:resume_at], r3_done
    jmp 0x407000
r3_read_ok:
    mov dword [ss:resume_at], r3_done
    mov eax, [0x406000]
    mov [r3_value], eax
r3_done:
    int 0x80

r3_value: dd 0

test_main:
    call setup_paging
    mov dword [DATA], 0x11111111
    mov dword [PTE(0x400000)], DATA | PG_P | PG_RW | PG_US
    CHECK_EQ "4 KiB page maps 0x400000 to 0x200000", [0x400000], 0x11111111
    mov dword [0x400004], 0x22222222
    CHECK_EQ "write through the mapping", [DATA + 4], 0x22222222

    ; ----------------------------------------------- accessed and dirty bits
    mov dword [PTE(0x401000)], DATA + 0x1000 | PG_P | PG_RW
    and dword [PD + 4], ~PG_A
    mov eax, [0x401000]
    CHECK_EQ "read sets A only", [PTE(0x401000)], DATA + 0x1000 | PG_P | PG_RW | PG_A
    mov eax, [PD + 4]
    and eax, PG_A
    CHECK_EQ "walk sets A in the PDE", eax, PG_A
    mov dword [0x401000], 5
    CHECK_EQ "write sets D", [PTE(0x401000)], DATA + 0x1000 | PG_P | PG_RW | PG_A | PG_D

    ; ------------------------------------------------ not-present and CR2
    EXPECT_FAULT "not-present read", 14, 0
    mov eax, [0x403010]
    END_FAULT
    mov ecx, cr2
    CHECK_EQ "not-present read (CR2)", ecx, 0x403010
    EXPECT_FAULT "not-present write", 14, 2
    mov dword [0x403020], 1
    END_FAULT
    mov ecx, cr2
    CHECK_EQ "not-present write (CR2)", ecx, 0x403020
    mov dword [PD + 8], 0           ; whole 0x800000-0xBFFFFF table missing
    EXPECT_FAULT "not-present page table", 14, 0
    mov eax, [0x800000]
    END_FAULT

    ; -------------------------------------------- supervisor writes and WP
    mov dword [PTE(0x402000)], DATA + 0x2000 | PG_P    ; read-only, supervisor
    mov eax, cr0
    and eax, ~(1 << 16)
    mov cr0, eax
    mov dword [0x402000], 0x5A5A
    CHECK_EQ "WP=0: supervisor writes a read-only page", [DATA + 0x2000], 0x5A5A
    mov dword [PTE(0x402000) + 4], DATA + 0x3000 | PG_P ; 0x403000, clean
    mov eax, cr0
    or eax, 1 << 16
    mov cr0, eax
    EXPECT_FAULT "WP=1: supervisor write to read-only page", 14, 3
    mov dword [0x403000], 1
    END_FAULT
    mov ecx, cr2
    CHECK_EQ "WP=1 fault (CR2)", ecx, 0x403000
    CHECK_EQ "faulting write sets neither A nor D", [PTE(0x403000)], DATA + 0x3000 | PG_P
    CHECK_EQ "faulting write changed nothing", [DATA + 0x3000], 0

    ; A write across a page boundary into a read-only page writes nothing.
    mov dword [DATA + 0xA000 + 0xFFC], 0x11223344
    mov dword [PTE(0x40A000)], DATA + 0xA000 | PG_P | PG_RW
    mov dword [PTE(0x40B000)], DATA + 0xB000 | PG_P
    EXPECT_FAULT "page-crossing write into a read-only page", 14, 3
    mov dword [0x40AFFE], 0xAABBCCDD
    END_FAULT
    CHECK_EQ "page-crossing write: first page untouched", [DATA + 0xA000 + 0xFFC], 0x11223344
    mov ecx, cr2
    and ecx, ~0xFFF
    CHECK_EQ "page-crossing write: CR2 in the second page", ecx, 0x40B000
    ; The PDE of a page table is not a leaf: writes do not set its D bit.
    mov eax, [PD + 4]
    and eax, PG_D
    CHECK_EQ "writes leave D clear in a non-leaf PDE", eax, 0
    ; A not-present entry's other bits are ignored: no RSVD.
    mov dword [PD + 12], (1 << 21) | PG_PS | PG_RW      ; P = 0
    EXPECT_FAULT "not-present PDE with reserved bits: P=0, no RSVD", 14, 0
    mov eax, [0xC00000]
    END_FAULT

    ; ------------------------------------------------------- user accesses
    mov dword [DATA + 0x6000], 0x600D
    mov dword [PTE(0x406000)], DATA + 0x6000 | PG_P | PG_US      ; user read-only
    mov dword [PTE(0x407000)], DATA + 0x7000 | PG_P | PG_RW      ; supervisor
    RING3 "user write to read-only page", r3_write_ro, 7, 0x406000
    RING3 "user read of supervisor page", r3_read_sup, 5, 0x407000
    mov dword [DATA + 0x7000], 0x80CD          ; int 0x80
    RING3 "user fetch from a supervisor page", r3_fetch_sup, 5, 0x407000
    mov byte [DATA + 0xC000], 0xC3             ; ret
    mov dword [PTE(0x40C000)], DATA + 0xC000 | PG_P | PG_US
    EXPECT_FAULT "supervisor fetch from a user page (no SMEP)", -1, -1
    call 0x40C000
    END_FAULT
    mov eax, cr0
    and eax, ~(1 << 16)
    mov cr0, eax
    RING3 "WP=0: user write to read-only page", r3_write_ro, 7, 0x406000
    mov eax, cr0
    or eax, 1 << 16
    mov cr0, eax
    mov eax, r3_read_ok
    call ring3_call
    CHECK_EQ "user read of user page", [r3_value], 0x600D
    mov dword [PD + 4], PT1 | PG_P | PG_RW          ; the PDE says supervisor
    invlpg [0x406000]
    RING3 "user read, supervisor PDE", r3_read_ok, 5, 0x406000
    mov dword [PD + 4], PT1 | PG_P | PG_RW | PG_US
    invlpg [0x406000]

    ; --------------------------------------------------------- TLB semantics
    mov dword [DATA + 0x4000], 0xAAAA
    mov dword [DATA + 0x5000], 0xBBBB
    mov dword [PTE(0x404000)], DATA + 0x4000 | PG_P | PG_RW
    CHECK_EQ "TLB: first translation", [0x404000], 0xAAAA
    mov dword [PTE(0x404000)], DATA + 0x5000 | PG_P | PG_RW
    CHECK_EQ "TLB: stale translation before INVLPG", [0x404000], 0xAAAA
    invlpg [0x404000]
    CHECK_EQ "TLB: INVLPG drops it", [0x404000], 0xBBBB
    mov dword [PTE(0x404000)], DATA + 0x4000 | PG_P | PG_RW
    CHECK_EQ "TLB: stale again", [0x404000], 0xBBBB
    mov eax, cr3
    mov cr3, eax
    CHECK_EQ "TLB: CR3 load drops it", [0x404000], 0xAAAA
    mov dword [PTE(0x404000)], 0
    CHECK_EQ "TLB: not-present PTE still cached", [0x404000], 0xAAAA
    invlpg [0x404000]
    EXPECT_FAULT "TLB: not-present after INVLPG", 14, 0
    mov eax, [0x404000]
    END_FAULT

    ; Global pages survive a CR3 load with CR4.PGE.
    mov eax, cr4
    or eax, 1 << 7
    mov cr4, eax
    mov dword [PTE(0x405000)], DATA + 0x4000 | PG_P | PG_RW | PG_G
    CHECK_EQ "global page: first translation", [0x405000], 0xAAAA
    mov dword [PTE(0x405000)], DATA + 0x5000 | PG_P | PG_RW | PG_G
    mov eax, cr3
    mov cr3, eax
    CHECK_EQ "global page survives CR3 load", [0x405000], 0xAAAA
    invlpg [0x405000]
    CHECK_EQ "global page: INVLPG drops it", [0x405000], 0xBBBB
    mov dword [PTE(0x405000)], DATA + 0x4000 | PG_P | PG_RW | PG_G
    mov eax, cr4
    and eax, ~(1 << 7)
    mov cr4, eax
    CHECK_EQ "clearing CR4.PGE flushes global pages", [0x405000], 0xAAAA

    ; ------------------------------------------------- 4 MiB pages (PSE)
    mov eax, cr4
    or eax, 1 << 4
    mov cr4, eax
    mov dword [PD + 8], 0 | PG_P | PG_RW | PG_PS        ; 0x800000 -> 0
    mov dword [0x800000 + DATA + 0x8000], 0x4444
    CHECK_EQ "4 MiB page aliases physical 0", [DATA + 0x8000], 0x4444
    mov eax, [PD + 8]
    and eax, PG_A | PG_D
    CHECK_EQ "4 MiB page: A and D in the PDE", eax, PG_A | PG_D
    ; INVLPG of any address in a large page drops the whole page.
    mov eax, [0x800000 + 0x1000]                  ; cache two 4 KiB pieces
    mov eax, [0x800000 + DATA + 0x8000]
    mov dword [PD + 8], 0x400000 | PG_P | PG_RW | PG_PS ; now -> physical 4 MiB
    CHECK_EQ "4 MiB page: stale before INVLPG", [0x800000 + DATA + 0x8000], 0x4444
    invlpg [0x800000]
    ; (physical 0x608000 is untouched RAM: zero)
    CHECK_EQ "4 MiB page: INVLPG elsewhere in the page drops it", [0x800000 + DATA + 0x8000], 0
    mov dword [PD + 8], 0 | PG_P | PG_RW | PG_PS
    invlpg [0x800000]
    mov dword [PD + 12], 0 | PG_P | PG_RW | PG_PS | (1 << 21)
    EXPECT_FAULT "4 MiB page: reserved bit 21", 14, 9
    mov eax, [0xC00000]
    END_FAULT
    EXPECT_FAULT "4 MiB page: reserved bit on write", 14, 11
    mov dword [0xC00000], 0
    END_FAULT
    ; Without CR4.PSE the PS bit is ignored: the PDE names a page table.
    mov dword [PD + 16], PT0 | PG_P | PG_RW | PG_PS    ; 0x1000000 -> PT0 as a table
    mov eax, cr4
    and eax, ~(1 << 4)
    mov cr4, eax
    CHECK_EQ "PS ignored without CR4.PSE", [0x1000000 + DATA + 0x8000], 0x4444

    ; -------------------------------------------------------- PAE paging
    mov eax, cr0
    and eax, 0x7FFFFFFF
    mov cr0, eax
    mov edi, PDPT
    mov ecx, 0x3000 / 4
    xor eax, eax
    rep stosd
    mov dword [PDPT], PAE_PD | PG_P
    mov dword [PAE_PD], 0 | PG_P | PG_RW | PG_US | PG_PS          ; 0-2 MiB
    mov dword [PAE_PD + 8], 0x200000 | PG_P | PG_RW | PG_US | PG_PS ; 2-4 MiB
    mov dword [PAE_PD + 16], PAE_PT | PG_P | PG_RW | PG_US      ; 4-6 MiB: 4 KiB pages
    mov dword [PAE_PD + 24], 0x200000 | PG_P | PG_RW | PG_PS    ; 6 MiB -> 2 MiB
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    CHECK_EQ "PAE: identity 2 MiB page", [DATA + 4], 0x22222222
    CHECK_EQ "PAE: 2 MiB page at 6 MiB", [0x600000 + 0x8000], 0x4444
    mov eax, [PAE_PD + 24]
    and eax, PG_A | PG_D
    CHECK_EQ "PAE: read sets A in a 2 MiB PDE", eax, PG_A
    ; The PDPTEs are registers loaded by MOV CR3: editing the live PDPT is
    ; not seen until the next load, not even after INVLPG.
    mov esi, PAE_PD
    mov edi, PAE_PD2
    mov ecx, 8
    rep movsd
    mov dword [PAE_PD2 + 24], 0 | PG_P | PG_RW | PG_PS      ; 6 MiB -> 0
    mov dword [PDPT], PAE_PD2 | PG_P
    invlpg [0x608000]
    CHECK_EQ "PAE: PDPTE edit not seen before a CR3 load", [0x608000], 0x4444
    mov eax, cr3
    mov cr3, eax
    mov eax, [0x8000]
    CHECK_EQ "PAE: CR3 load reloads the PDPTEs", [0x608000], eax
    mov dword [PDPT], PAE_PD | PG_P
    mov eax, cr3
    mov cr3, eax
    mov dword [PDPT2], PAE_PD | PG_P | PG_RW         ; bit 1 is reserved in a PDPTE
    mov ebx, cr3
    EXPECT_FAULT "PAE: MOV CR3 with a reserved PDPTE bit", 13, 0
    mov eax, PDPT2
    mov cr3, eax
    END_FAULT
    mov eax, cr3
    CHECK_EQ "PAE: CR3 unchanged by the #GP", eax, ebx
    CHECK_EQ "PAE: old PDPTEs still in use", [0x608000], 0x4444
    ; Code page 0x209000: `mov eax, 0x1234 ; ret`.
    mov dword [DATA + 0x9000], 0x001234B8
    mov dword [DATA + 0x9004], 0xC300
    mov dword [PAE_PTE(0x401000)], DATA + 0x9000 | PG_P | PG_RW
    xor eax, eax
    call 0x401000
    CHECK_EQ "PAE: code runs from a 4 KiB page", eax, 0x1234
    ; NX without EFER.NXE is a reserved bit.
    mov dword [PAE_PTE(0x402000)], DATA + 0x9000 | PG_P | PG_RW
    mov dword [PAE_PTE(0x402000) + 4], 0x80000000
    EXPECT_FAULT "PAE: NX reserved without EFER.NXE", 14, 9
    mov eax, [0x402000]
    END_FAULT
    mov dword [PAE_PTE(0x403000)], DATA + 0x9000 | PG_P | PG_RW
    mov dword [PAE_PTE(0x403000) + 4], 1 << 8           ; bit 40: above MAXPHYADDR
    EXPECT_FAULT "PAE: reserved address bit", 14, 9
    mov eax, [0x403000]
    END_FAULT
    mov ecx, 0xC0000080
    rdmsr
    or eax, 1 << 11
    wrmsr
    CHECK_EQ "PAE: NX page readable", [0x402000], 0x001234B8
    EXPECT_FAULT "PAE: fetch from NX page", 14, 0x11
    mov eax, 0x402000
    jmp eax
    END_FAULT
    mov ecx, cr2
    CHECK_EQ "PAE: NX fault (CR2)", ecx, 0x402000
    EXPECT_FAULT "PAE: not-present fetch has I/D", 14, 0x10
    mov eax, 0x404000
    jmp eax
    END_FAULT
    mov dword [PAE_PD + 24 + 4], 0x80000000             ; NX on the 2 MiB PDE
    invlpg [0x609000]
    EXPECT_FAULT "PAE: NX in a PDE covers its 2 MiB page", 14, 0x11
    mov eax, 0x609000
    jmp eax
    END_FAULT
    mov ecx, 0xC0000080
    rdmsr
    and eax, ~(1 << 11)
    wrmsr
    ret
