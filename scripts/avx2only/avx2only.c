/*
 * avx2only: make a process see an AVX2-only x86-64 CPU (no AVX-512, no VNNI, no AMX, no bf16).
 *
 * Loaded with LD_PRELOAD (scripts/avx2only/run.py builds and preloads it). Its constructor turns on
 * CPUID faulting for the process (Linux arch_prctl(ARCH_SET_CPUID, 0); the CPU and kernel report the
 * "cpuid_fault" flag when they can), so every CPUID instruction traps. The SIGSEGV handler runs the
 * real CPUID, clears the feature bits of leaf 7 that name AVX-512, AVX-VNNI, AMX and the bf16/fp16
 * extensions, and resumes after the instruction. Libraries that choose their kernels by CPUID (ONNX
 * Runtime's MLAS, oneDNN, MKL, PyTorch's cpuinfo and ATen dispatch, numpy, OpenBLAS) then pick their
 * AVX2 kernels, which run at native speed on the real CPU.
 *
 * What it does not change: /proc/cpuinfo, and the C library's own string functions, chosen before
 * this constructor runs. The setting survives fork() and clone(); execve() clears it, and the new
 * program gets it again from LD_PRELOAD. If CPUID faulting cannot be turned on, the process exits
 * with status 97 rather than run unmasked.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* Leaf 7, subleaf 0. */
static const uint32_t EBX7 = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
/* avx512f, dq, ifma, pf, er, cd, bw, vl */
static const uint32_t ECX7 = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
/* avx512_vbmi, vbmi2, vnni, bitalg, vpopcntdq */
static const uint32_t EDX7 = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
/* avx512_4vnniw, 4fmaps, vp2intersect, amx_bf16, avx512_fp16, amx_tile, amx_int8 */
/* Leaf 7, subleaf 1. */
static const uint32_t EAX71 = BIT(4) | BIT(5) | BIT(21) | BIT(23);
/* avx_vnni, avx512_bf16, amx_fp16, avx_ifma */
static const uint32_t EDX71 = BIT(4) | BIT(5) | BIT(8) | BIT(10) | BIT(19);
/* avx_vnni_int8, avx_ne_convert, amx_complex, avx_vnni_int16, avx10 */

static void real_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}

static void on_fault(int signal_number, siginfo_t *info, void *context) {
    (void)info;
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not CPUID: a real fault, let it end the process */
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(signal_number, &fallback, 0);
        return;
    }
    uint32_t leaf = (uint32_t)regs[REG_RAX], subleaf = (uint32_t)regs[REG_RCX], r[4];
    real_cpuid(leaf, subleaf, r);
    if (leaf == 7 && subleaf == 0) {
        r[1] &= ~EBX7;
        r[2] &= ~ECX7;
        r[3] &= ~EDX7;
    } else if (leaf == 7 && subleaf == 1) {
        r[0] &= ~EAX71;
        r[3] &= ~EDX71;
    }
    regs[REG_RAX] = r[0];
    regs[REG_RBX] = r[1];
    regs[REG_RCX] = r[2];
    regs[REG_RDX] = r[3];
    regs[REG_RIP] += 2;
}

__attribute__((constructor)) static void avx2only_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, 0) != 0 || syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        static const char message[] = "avx2only: CPUID faulting is not available on this CPU or kernel\n";
        ssize_t ignored = write(2, message, sizeof message - 1);
        (void)ignored;
        _exit(97);
    }
}
