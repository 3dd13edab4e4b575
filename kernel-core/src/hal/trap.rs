//! What the HAL hands the kernel when a fault or an interrupt arrives, and
//! what the kernel answers.

/// How the faulting access touched memory, when the platform can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
    /// The platform cannot tell (hosted aarch64 reports no access kind).
    Unknown,
}

/// The kind of a synchronous fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// An access to an address with no translation, or one the translation
    /// forbids. hosted: `SIGSEGV`; riscv: load, store or instruction page
    /// fault (and access faults).
    PageFault(Access),
    /// An access the memory system rejected for another reason (hosted:
    /// `SIGBUS`, e.g. past the end of the memfd; riscv: misaligned access).
    BusError,
    /// An instruction that does not decode or is not allowed (hosted:
    /// `SIGILL`; riscv: illegal instruction).
    IllegalInstruction,
    /// A breakpoint instruction (hosted: `SIGTRAP`; riscv: `ebreak`).
    Breakpoint,
    /// An arithmetic fault (hosted: `SIGFPE`; riscv has none: integer
    /// division does not trap there).
    Arithmetic,
}

/// The state of a CPU at a synchronous fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapFrame {
    /// What happened.
    pub kind: TrapKind,
    /// The address of the faulting instruction.
    pub pc: usize,
    /// The stack pointer at the fault.
    pub sp: usize,
    /// The frame pointer at the fault.
    pub fp: usize,
    /// The faulting data or instruction address, for page and bus faults.
    pub fault_addr: Option<usize>,
}

/// Registers to load when a fault is answered with [`TrapAction::Redirect`]:
/// execution continues at `pc` with `sp` and the frame pointer set, and the
/// first two argument registers holding `args`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeContext {
    /// Where to continue.
    pub pc: usize,
    /// Stack pointer to continue with.
    pub sp: usize,
    /// Frame pointer to continue with.
    pub fp: usize,
    /// The first two argument registers (x86_64: `rdi`, `rsi`; aarch64:
    /// `x0`, `x1`; riscv64: `a0`, `a1`).
    pub args: [usize; 2],
}

/// The kernel's answer to a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapAction {
    /// The cause is fixed (a page was mapped): retry the instruction.
    Resume,
    /// Continue elsewhere, for instance at a saved entry context when guest
    /// code trapped.
    Redirect(ResumeContext),
    /// The fault is a kernel bug. The kernel has already printed its report;
    /// the platform stops the machine with this exit status.
    Fatal(u8),
}

/// An asynchronous interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// This CPU's one-shot timer expired.
    Timer,
    /// Another CPU sent an inter-processor interrupt.
    Ipi,
    /// Console input arrived (or ended) after a read found none
    /// ([`super::Console::input_interrupts`]).
    Input,
}
