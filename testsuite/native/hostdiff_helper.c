/*
 * hostdiff_helper: runs instruction sequences natively for oxide86's
 * host-differential tester (testsuite/src/hostdiff). Built with
 * `gcc -m32 -O2` by testsuite/build.rs; Linux/x86 only.
 *
 * The process maps three regions at fixed addresses (the runner's
 * interpreter side maps the same ones; see hostdiff/layout.rs):
 *   DATA_BASE  the data window the sequence may touch (stack included)
 *   CODE_BASE  the sequence, followed by `jmp [CTRL_EXIT]` back to hd_exit
 *   CTRL_BASE  the register block hd_enter/hd_exit load and store
 * ES and FS are loaded with a selector whose base is DATA_BASE (a TLS GDT
 * entry from set_thread_area), so 16-bit addressing reaches the window.
 *
 * Protocol on stdin/stdout, little-endian u32s:
 *   job:    regs[8] (EAX..EDI) eflags code_len code[code_len] data[DATA_SIZE]
 *   result: status (0 = completed, else the signal) trapno err
 *           regs[8] eip eflags data[DATA_SIZE]
 * A fault (SIGFPE, SIGSEGV, SIGILL, SIGTRAP, SIGBUS) is caught on an
 * alternate stack; the registers at the fault come from the ucontext.
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define DATA_BASE 0x10000000u
#define DATA_SIZE 0x1000u
#define CODE_BASE 0x20000000u
#define CODE_SIZE 0x10000u
#define CTRL_BASE 0x30000000u

/* Layout fixed by the assembly below (offsets in comments). */
struct ctrl {
    uint32_t in_regs[8];  /* 0x00 */
    uint32_t in_eflags;   /* 0x20 */
    uint32_t out_regs[8]; /* 0x24 */
    uint32_t out_eflags;  /* 0x44 */
    uint32_t saved_esp;   /* 0x48 */
    uint32_t entry;       /* 0x4c */
    uint32_t exit;        /* 0x50 */
    uint32_t sel;         /* 0x54 */
};

void hd_enter(void);
void hd_exit(void);
__asm__(
    ".text\n"
    ".globl hd_enter\n"
    "hd_enter:\n"
    "  pushal\n"
    "  movl %esp, 0x30000048\n"
    "  movl 0x30000054, %eax\n"
    "  movw %ax, %es\n"
    "  movw %ax, %fs\n"
    "  movl $0x30000020, %esp\n"
    "  popfl\n"
    "  movl 0x30000000, %eax\n"
    "  movl 0x30000004, %ecx\n"
    "  movl 0x30000008, %edx\n"
    "  movl 0x3000000c, %ebx\n"
    "  movl 0x30000014, %ebp\n"
    "  movl 0x30000018, %esi\n"
    "  movl 0x3000001c, %edi\n"
    "  movl 0x30000010, %esp\n"
    "  jmp *0x3000004c\n"
    ".globl hd_exit\n"
    "hd_exit:\n"
    "  movl %eax, 0x30000024\n"
    "  movl %ecx, 0x30000028\n"
    "  movl %edx, 0x3000002c\n"
    "  movl %ebx, 0x30000030\n"
    "  movl %esp, 0x30000034\n"
    "  movl %ebp, 0x30000038\n"
    "  movl %esi, 0x3000003c\n"
    "  movl %edi, 0x30000040\n"
    "  movl $0x30000048, %esp\n"
    "  pushfl\n"
    "  cld\n"
    "  movl 0x30000048, %esp\n"
    "  movw %ds, %ax\n"
    "  movw %ax, %es\n"
    "  popal\n"
    "  ret\n");

static struct ctrl *const ctrl = (struct ctrl *)CTRL_BASE;
static sigjmp_buf env;
static uint32_t fault_eip, fault_trapno, fault_err;

static void on_fault(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    (void)si;
    ctrl->out_regs[0] = g[REG_EAX];
    ctrl->out_regs[1] = g[REG_ECX];
    ctrl->out_regs[2] = g[REG_EDX];
    ctrl->out_regs[3] = g[REG_EBX];
    ctrl->out_regs[4] = g[REG_ESP];
    ctrl->out_regs[5] = g[REG_EBP];
    ctrl->out_regs[6] = g[REG_ESI];
    ctrl->out_regs[7] = g[REG_EDI];
    ctrl->out_eflags = g[REG_EFL];
    fault_eip = g[REG_EIP];
    fault_trapno = g[REG_TRAPNO];
    fault_err = g[REG_ERR];
    siglongjmp(env, sig);
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void map_fixed(uint32_t addr, uint32_t size, int prot) {
    void *p = mmap((void *)addr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)addr)
        die("hostdiff_helper: mmap of a fixed region");
}

static int read_all(void *buf, size_t n) {
    return fread(buf, 1, n, stdin) == n;
}

int main(void) {
    static uint8_t altstack[65536];
    static uint8_t code[CODE_SIZE];
    static uint8_t data[DATA_SIZE];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    struct sigaction sa;
    struct user_desc d;
    int sigs[] = {SIGFPE, SIGSEGV, SIGILL, SIGTRAP, SIGBUS};

    map_fixed(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
    map_fixed(CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
    map_fixed(CTRL_BASE, 0x1000, PROT_READ | PROT_WRITE);
    if (sigaltstack(&ss, NULL) != 0)
        die("hostdiff_helper: sigaltstack");
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            die("hostdiff_helper: sigaction");
    memset(&d, 0, sizeof d);
    d.entry_number = (unsigned)-1;
    d.base_addr = DATA_BASE;
    d.limit = 0xfffff;
    d.seg_32bit = 1;
    d.limit_in_pages = 1;
    d.useable = 1;
    if (syscall(SYS_set_thread_area, &d) != 0)
        die("hostdiff_helper: set_thread_area");
    ctrl->sel = (d.entry_number << 3) | 3;
    ctrl->entry = CODE_BASE;
    ctrl->exit = (uint32_t)(uintptr_t)hd_exit;

    for (;;) {
        uint32_t hdr[10], out[14];
        uint32_t len;
        int sig;
        if (!read_all(hdr, sizeof hdr))
            return 0;
        len = hdr[9];
        if (len > CODE_SIZE - 16 || !read_all(code, len) || !read_all(data, DATA_SIZE)) {
            fprintf(stderr, "hostdiff_helper: malformed job\n");
            return 2;
        }
        memcpy((void *)CODE_BASE, code, len);
        /* jmp dword [CTRL_BASE + 0x50] */
        memcpy((void *)(CODE_BASE + len), "\xff\x25\x50\x00\x00\x30", 6);
        memcpy((void *)DATA_BASE, data, DATA_SIZE);
        memcpy(ctrl->in_regs, hdr, 8 * 4);
        ctrl->in_eflags = hdr[8];
        fault_eip = fault_trapno = fault_err = 0;
        sig = sigsetjmp(env, 1);
        if (sig == 0) {
            hd_enter();
            fault_eip = CODE_BASE + len;
        }
        out[0] = (uint32_t)sig;
        out[1] = fault_trapno;
        out[2] = fault_err;
        memcpy(&out[3], ctrl->out_regs, 8 * 4);
        out[11] = fault_eip;
        out[12] = ctrl->out_eflags;
        if (fwrite(out, 4, 13, stdout) != 13 || fwrite((void *)DATA_BASE, 1, DATA_SIZE, stdout) != DATA_SIZE ||
            fflush(stdout) != 0)
            return 0;
    }
}
