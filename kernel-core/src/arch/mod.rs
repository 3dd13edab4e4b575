//! ISA-specific pieces: the wasm entry routine that saves a context a trap
//! can unwind to, the jump that resumes at an exception handler
//! ([`resume`]), the frame-pointer layout the backtrace and the exception
//! unwinder walk, and the fiber context switch ([`switch`]).
//!
//! # The entry routine
//!
//! `vessel_wasm_enter(save, f, a0, a1, a2, a3) -> usize` (C calling
//! convention) pushes the callee-saved registers and the frame pointer on
//! its own stack, stores `[landing pc, sp, fp]` into `save[0..3]`, calls
//! `f(a0, a1, a2, a3)` and returns 0. A fault answered with
//! `TrapAction::Redirect` to the saved `pc`/`sp`/`fp` continues at the
//! landing pad, which reloads the callee-saved registers from that stack
//! frame and returns 1 from the same call.
//!
//! Invariants:
//! - INV-ARCH-1: between the store into `save` and the return, the entry
//!   frame (and so the saved `sp`) stays valid: only code called by `f`
//!   runs, on the stack below it.
//! - INV-ARCH-2: a Cranelift frame (with `preserve_frame_pointers`) stores
//!   the caller's frame pointer at `[fp]` and the return address at
//!   `[fp + size_of::<usize>()]` on all three ISAs.

use core::arch::global_asm;

pub mod switch;

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".global vessel_wasm_enter",
    ".p2align 4",
    "vessel_wasm_enter:",
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "lea rax, [rip + .Lvessel_wasm_landing]",
    "mov [rdi], rax",
    "mov [rdi + 8], rsp",
    "mov [rdi + 16], rbp",
    "mov rax, rsi",
    "mov rdi, rdx",
    "mov rsi, rcx",
    "mov rdx, r8",
    "mov rcx, r9",
    "call rax",
    "xor eax, eax",
    "jmp .Lvessel_wasm_done",
    ".Lvessel_wasm_landing:",
    "mov eax, 1",
    ".Lvessel_wasm_done:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".global vessel_wasm_enter",
    ".p2align 4",
    "vessel_wasm_enter:",
    "stp x29, x30, [sp, #-160]!",
    "mov x29, sp",
    "stp x19, x20, [sp, #16]",
    "stp x21, x22, [sp, #32]",
    "stp x23, x24, [sp, #48]",
    "stp x25, x26, [sp, #64]",
    "stp x27, x28, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "adr x9, .Lvessel_wasm_landing",
    "str x9, [x0]",
    "mov x9, sp",
    "str x9, [x0, #8]",
    "str x29, [x0, #16]",
    "mov x9, x1",
    "mov x0, x2",
    "mov x1, x3",
    "mov x2, x4",
    "mov x3, x5",
    "blr x9",
    "mov x0, #0",
    "b .Lvessel_wasm_done",
    ".Lvessel_wasm_landing:",
    "mov x0, #1",
    ".Lvessel_wasm_done:",
    "ldp x19, x20, [sp, #16]",
    "ldp x21, x22, [sp, #32]",
    "ldp x23, x24, [sp, #48]",
    "ldp x25, x26, [sp, #64]",
    "ldp x27, x28, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "ldp x29, x30, [sp], #160",
    "ret",
);

#[cfg(target_arch = "riscv64")]
global_asm!(
    ".text",
    // global_asm! does not see the target's features: say that F and D
    // (part of riscv64gc) are there for the fs0..fs11 saves.
    ".option push",
    ".option arch, +f, +d",
    ".global vessel_wasm_enter",
    ".p2align 2",
    "vessel_wasm_enter:",
    "addi sp, sp, -208",
    "sd ra, 0(sp)",
    "sd s0, 8(sp)",
    "sd s1, 16(sp)",
    "sd s2, 24(sp)",
    "sd s3, 32(sp)",
    "sd s4, 40(sp)",
    "sd s5, 48(sp)",
    "sd s6, 56(sp)",
    "sd s7, 64(sp)",
    "sd s8, 72(sp)",
    "sd s9, 80(sp)",
    "sd s10, 88(sp)",
    "sd s11, 96(sp)",
    "fsd fs0, 104(sp)",
    "fsd fs1, 112(sp)",
    "fsd fs2, 120(sp)",
    "fsd fs3, 128(sp)",
    "fsd fs4, 136(sp)",
    "fsd fs5, 144(sp)",
    "fsd fs6, 152(sp)",
    "fsd fs7, 160(sp)",
    "fsd fs8, 168(sp)",
    "fsd fs9, 176(sp)",
    "fsd fs10, 184(sp)",
    "fsd fs11, 192(sp)",
    "addi s0, sp, 208",
    "lla t0, .Lvessel_wasm_landing",
    "sd t0, 0(a0)",
    "sd sp, 8(a0)",
    "sd s0, 16(a0)",
    "mv t0, a1",
    "mv a0, a2",
    "mv a1, a3",
    "mv a2, a4",
    "mv a3, a5",
    "jalr t0",
    "li a0, 0",
    "j .Lvessel_wasm_done",
    ".Lvessel_wasm_landing:",
    "li a0, 1",
    ".Lvessel_wasm_done:",
    "ld ra, 0(sp)",
    "ld s0, 8(sp)",
    "ld s1, 16(sp)",
    "ld s2, 24(sp)",
    "ld s3, 32(sp)",
    "ld s4, 40(sp)",
    "ld s5, 48(sp)",
    "ld s6, 56(sp)",
    "ld s7, 64(sp)",
    "ld s8, 72(sp)",
    "ld s9, 80(sp)",
    "ld s10, 88(sp)",
    "ld s11, 96(sp)",
    "fld fs0, 104(sp)",
    "fld fs1, 112(sp)",
    "fld fs2, 120(sp)",
    "fld fs3, 128(sp)",
    "fld fs4, 136(sp)",
    "fld fs5, 144(sp)",
    "fld fs6, 152(sp)",
    "fld fs7, 160(sp)",
    "fld fs8, 168(sp)",
    "fld fs9, 176(sp)",
    "fld fs10, 184(sp)",
    "fld fs11, 192(sp)",
    "addi sp, sp, 208",
    "ret",
    ".option pop",
);

// The register-saving entry of the `EpochSaving` builtin: JIT code calls
// it in Cranelift's `PreserveAll` convention (vmctx in `rdi`, nothing
// clobbered), so it saves every register the System V Rust builtin may
// change (the caller-saved integer registers and the low 128 bits of
// xmm0-15, all Cranelift's x86_64 code uses), calls it, restores them and
// returns. The frame is a normal one (`rbp` linked) for backtraces.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".global vessel_epoch_saving",
    ".p2align 4",
    "vessel_epoch_saving:",
    "push rbp",
    "mov rbp, rsp",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    // Ten pushes after the return address: 16-byte aligned again after
    // 256 bytes of vector slots and 8 of padding.
    "sub rsp, 264",
    "movdqu [rsp], xmm0",
    "movdqu [rsp + 16], xmm1",
    "movdqu [rsp + 32], xmm2",
    "movdqu [rsp + 48], xmm3",
    "movdqu [rsp + 64], xmm4",
    "movdqu [rsp + 80], xmm5",
    "movdqu [rsp + 96], xmm6",
    "movdqu [rsp + 112], xmm7",
    "movdqu [rsp + 128], xmm8",
    "movdqu [rsp + 144], xmm9",
    "movdqu [rsp + 160], xmm10",
    "movdqu [rsp + 176], xmm11",
    "movdqu [rsp + 192], xmm12",
    "movdqu [rsp + 208], xmm13",
    "movdqu [rsp + 224], xmm14",
    "movdqu [rsp + 240], xmm15",
    "call {builtin}",
    "movdqu xmm0, [rsp]",
    "movdqu xmm1, [rsp + 16]",
    "movdqu xmm2, [rsp + 32]",
    "movdqu xmm3, [rsp + 48]",
    "movdqu xmm4, [rsp + 64]",
    "movdqu xmm5, [rsp + 80]",
    "movdqu xmm6, [rsp + 96]",
    "movdqu xmm7, [rsp + 112]",
    "movdqu xmm8, [rsp + 128]",
    "movdqu xmm9, [rsp + 144]",
    "movdqu xmm10, [rsp + 160]",
    "movdqu xmm11, [rsp + 176]",
    "movdqu xmm12, [rsp + 192]",
    "movdqu xmm13, [rsp + 208]",
    "movdqu xmm14, [rsp + 224]",
    "movdqu xmm15, [rsp + 240]",
    "add rsp, 264",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "pop rbp",
    "ret",
    builtin = sym crate::wasm::vm::epoch_saving_builtin,
);

/// The address JIT code calls for the `EpochSaving` builtin: the
/// register-saving stub on x86_64; elsewhere (where the translator never
/// calls it) the Rust builtin itself.
pub fn epoch_saving_entry() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        unsafe extern "C" {
            fn vessel_epoch_saving();
        }
        vessel_epoch_saving as *const () as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        crate::wasm::vm::epoch_saving_builtin as *const () as usize
    }
}

// Resume wasm at an exception handler (or at the entry's landing pad):
// `vessel_wasm_resume(pc, sp, fp, payload)` sets the stack and frame
// pointers, puts `payload` in the first exception payload register of
// Cranelift's `tail` convention (the second is zeroed) and jumps to `pc`.
// Every other register is dead there (translate `exceptions`
// INV-EXN-3); the landing pad reloads what it needs from its frame.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".global vessel_wasm_resume",
    ".p2align 4",
    "vessel_wasm_resume:",
    "mov rsp, rsi",
    "mov rbp, rdx",
    "mov rax, rcx",
    "xor edx, edx",
    "jmp rdi",
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".global vessel_wasm_resume",
    ".p2align 4",
    "vessel_wasm_resume:",
    "mov sp, x1",
    "mov x29, x2",
    "mov x9, x0",
    "mov x0, x3",
    "mov x1, xzr",
    "br x9",
);

#[cfg(target_arch = "riscv64")]
global_asm!(
    ".text",
    ".global vessel_wasm_resume",
    ".p2align 2",
    "vessel_wasm_resume:",
    "mv sp, a1",
    "mv s0, a2",
    "mv t0, a0",
    "mv a0, a3",
    "li a1, 0",
    "jr t0",
);

unsafe extern "C" {
    fn vessel_wasm_resume(pc: usize, sp: usize, fp: usize, payload: usize) -> !;
}

/// Continue at `[pc, sp, fp]` with `payload` in the exception payload
/// register: at a wasm exception handler, or at the entry routine's
/// landing pad. Never returns; the caller's frame is abandoned.
///
/// # Safety
/// `[pc, sp, fp]` is a handler of a live wasm frame on this stack with
/// that frame's stack and frame pointers (`compile::HandlerSite`), or the
/// saved entry context of this CPU (INV-ARCH-1); nothing on the abandoned
/// frames needs dropping.
pub unsafe fn resume(pc: usize, sp: usize, fp: usize, payload: usize) -> ! {
    // SAFETY: the caller's contract.
    unsafe { vessel_wasm_resume(pc, sp, fp, payload) }
}

unsafe extern "C" {
    fn vessel_wasm_enter(
        save: *mut usize,
        f: usize,
        a0: usize,
        a1: usize,
        a2: usize,
        a3: usize,
    ) -> usize;
}

/// Call `f(args...)` (C calling convention) after saving the entry context
/// `[pc, sp, fp]` into `save`. Returns `false` when `f` returned, `true`
/// when a fault was redirected to the saved context.
///
/// # Safety
/// `save` points to three writable `usize`s that stay valid for the whole
/// call; `f` is the address of a function of the C ABI taking four
/// pointer-sized arguments, and calling it with `args` is sound.
pub unsafe fn enter(save: *mut usize, f: usize, args: [usize; 4]) -> bool {
    // SAFETY: the caller's contract; the routine follows the C ABI and
    // restores every callee-saved register on both of its exits.
    unsafe { vessel_wasm_enter(save, f, args[0], args[1], args[2], args[3]) != 0 }
}

/// Follow one frame-pointer link (INV-ARCH-2): the caller's frame pointer
/// and the return address of the frame at `fp`.
///
/// # Safety
/// `fp` and `fp + size_of::<usize>()` are readable, aligned words.
pub unsafe fn frame_link(fp: usize) -> (usize, usize) {
    let p = fp as *const usize;
    // SAFETY: the caller's contract.
    unsafe { (p.read(), p.add(1).read()) }
}
