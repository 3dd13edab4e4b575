//! The fiber context switch: one routine per ISA that saves the caller's
//! callee-saved registers on its own stack, parks that stack pointer, and
//! continues on another stack that was parked the same way (or laid out by
//! [`init_stack`]).
//!
//! # Frame layout
//!
//! A parked context is a frame at the parked `sp`, lowest address first
//! (offsets in bytes):
//!
//! ```text
//! x86_64   [0] mxcsr (u32), x87 control word (u16), 2 bytes unused
//!          [8] r15 [16] r14 [24] r13 [32] r12 [40] rbx [48] rbp
//!          [56] return address                             (64 bytes)
//! aarch64  [0] x19 .. [72] x28, [80] x29 (fp), [88] x30 (lr)
//!          [96] d8 .. [152] d15                             (160 bytes)
//! riscv64  [0] ra, [8] s0 (fp) .. [96] s11, [104] fs0 .. [200] fs11
//!                                                           (208 bytes)
//! ```
//!
//! `switch` builds that frame, stores `sp` into `*save_sp`, loads
//! `load_sp`, reloads the registers from the frame there, pops it and
//! returns through the saved return address (x86_64: `ret` pops it;
//! aarch64 / riscv64: `ret` jumps to the reloaded `x30` / `ra`).
//!
//! A fresh stack ([`init_stack`]) holds one such frame whose return address
//! is a start routine and whose callee-saved registers carry the entry
//! function and its argument (x86_64: `r13`, `r12`; aarch64: `x20`, `x19`;
//! riscv64: `s2`, `s1`), with a zero frame pointer. The start routine moves
//! the argument into the first argument register, sets a null return
//! address (x86_64: a zero word on the stack; aarch64 / riscv64: `lr` /
//! `ra` = 0) and jumps to the entry. The entry so starts as if called, with
//! the stack alignment of the C ABI (x86_64: `rsp + 8` a multiple of 16;
//! aarch64 / riscv64: `sp` a multiple of 16) and a null return address and
//! frame pointer, where frame-pointer walks and unwinders stop.
//!
//! Invariants:
//! - INV-SWITCH-1: a parked frame is read back exactly once, by the
//!   `switch` that loads its `sp`; until then nothing else writes it (the
//!   stack it lives on is not running).
//! - INV-SWITCH-2: `switch` preserves every register the C ABI calls
//!   callee-saved, including the floating-point ones and (x86_64) the
//!   MXCSR / x87 control words; it clobbers only caller-saved registers,
//!   so to the compiler it is an ordinary call.

use core::arch::global_asm;

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".global vessel_fiber_switch",
    ".p2align 4",
    "vessel_fiber_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "stmxcsr [rsp]",
    "fnstcw [rsp + 4]",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "ldmxcsr [rsp]",
    "fldcw [rsp + 4]",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".global vessel_fiber_start",
    ".p2align 4",
    // Reached by the `ret` of the first switch into a fresh stack; `rsp`
    // points at the zero word that serves as the entry's return address.
    "vessel_fiber_start:",
    "mov rdi, r12",
    "jmp r13",
    "ud2",
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".global vessel_fiber_switch",
    ".p2align 4",
    "vessel_fiber_switch:",
    "sub sp, sp, #160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "mov x9, sp",
    "str x9, [x0]",
    "mov sp, x1",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "add sp, sp, #160",
    "ret",
    ".global vessel_fiber_start",
    ".p2align 4",
    "vessel_fiber_start:",
    "mov x0, x19",
    "mov x30, xzr",
    // Through x16 so that a BTI `c` landing pad accepts the branch.
    "mov x16, x20",
    "br x16",
    "brk #1",
);

#[cfg(target_arch = "riscv64")]
global_asm!(
    ".text",
    // global_asm! does not see the target's features: say that F and D
    // (part of riscv64gc) are there for the fs0..fs11 saves.
    ".option push",
    ".option arch, +f, +d",
    ".global vessel_fiber_switch",
    ".p2align 2",
    "vessel_fiber_switch:",
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
    "sd sp, 0(a0)",
    "mv sp, a1",
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
    ".global vessel_fiber_start",
    ".p2align 2",
    "vessel_fiber_start:",
    "mv a0, s1",
    "li ra, 0",
    "jr s2",
    "unimp",
    ".option pop",
);

unsafe extern "C" {
    fn vessel_fiber_switch(save_sp: *mut usize, load_sp: usize);
    fn vessel_fiber_start();
}

/// Bytes of the parked frame (see the module docs).
#[cfg(target_arch = "x86_64")]
const FRAME: usize = 64;
#[cfg(target_arch = "aarch64")]
const FRAME: usize = 160;
#[cfg(target_arch = "riscv64")]
const FRAME: usize = 208;

/// Bytes above the parked frame of a fresh stack: x86_64 keeps the entry's
/// zero return address there (and 8 bytes of padding keep `rsp + 8` a
/// multiple of 16 at the entry); the other ISAs pass it in a register.
#[cfg(target_arch = "x86_64")]
const ABOVE: usize = 8;
#[cfg(not(target_arch = "x86_64"))]
const ABOVE: usize = 0;

/// How far below `top` [`init_stack`] writes, at most (alignment included).
pub const INIT_BYTES: usize = FRAME + ABOVE + 15;

/// Lay out a fresh stack whose top is `top` so that the first [`switch`]
/// into the returned `sp` starts `entry(arg)` (see the module docs for the
/// frame). `top` is rounded down to a multiple of 16; the entry starts with
/// the C ABI's stack alignment, a null return address and a null frame
/// pointer, and the default floating-point control state.
///
/// # Safety
/// `[top - INIT_BYTES, top)` is writable memory owned by the caller and no
/// running code uses it. The returned `sp` may be switched into at most
/// once, and only while the memory from it up to `top` stays valid;
/// `entry` never returns (it must switch away for good instead).
pub unsafe fn init_stack(top: usize, entry: unsafe extern "C" fn(usize) -> !, arg: usize) -> usize {
    let top = top & !15;
    let sp = top - ABOVE - FRAME;
    let mut frame = [0usize; (FRAME + ABOVE) / 8];
    let start = vessel_fiber_start as *const () as usize;
    let entry = entry as *const () as usize;
    #[cfg(target_arch = "x86_64")]
    {
        // MXCSR: all exceptions masked, round to nearest (0x1f80); x87
        // control word: all exceptions masked, 64-bit precision, round to
        // nearest (0x037f). Both are the ABI's initial values.
        frame[0] = 0x1f80 | (0x037f << 32);
        frame[3] = entry; // r13
        frame[4] = arg; // r12
        frame[7] = start; // return address
        frame[8] = 0; // the entry's return address
    }
    #[cfg(target_arch = "aarch64")]
    {
        frame[0] = arg; // x19
        frame[1] = entry; // x20
        frame[10] = 0; // x29
        frame[11] = start; // x30
    }
    #[cfg(target_arch = "riscv64")]
    {
        frame[0] = start; // ra
        frame[1] = 0; // s0
        frame[2] = arg; // s1
        frame[3] = entry; // s2
    }
    // SAFETY: the caller's contract: `[sp, top)` lies in
    // `[top - INIT_BYTES, top)`, is writable and unused; `sp` is 8-aligned
    // (16-aligned `top` minus a multiple of 8).
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), sp as *mut usize, frame.len()) };
    sp
}

/// Park the current context: save the callee-saved registers on the
/// current stack, store its `sp` into `*save_sp`, then continue in the
/// context parked at `load_sp`. Returns when some later `switch` loads the
/// `sp` stored here.
///
/// # Safety
/// `save_sp` is valid for a write of one `usize`. `load_sp` is a context
/// parked by `switch` or made by [`init_stack`], not yet switched into
/// (INV-SWITCH-1), whose stack is still valid. Whatever runs there must
/// treat this context the same way: switch back into it at most once, and
/// only while the current stack stays valid. Code running after the switch
/// may be on another thread; nothing on the parked stack may rely on
/// staying on this one.
pub unsafe fn switch(save_sp: *mut usize, load_sp: usize) {
    // SAFETY: the caller's contract; the routine follows the C ABI
    // (INV-SWITCH-2).
    unsafe { vessel_fiber_switch(save_sp, load_sp) }
}
