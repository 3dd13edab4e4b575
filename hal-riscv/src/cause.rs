//! Decoding `scause`: which exceptions become which [`TrapKind`], and which
//! interrupts the HAL handles. Pure, so it is unit-tested on the host.
//!
//! Reference: RISC-V Privileged Architecture, "Supervisor Cause Register"
//! (table of `scause` values after trap).

use kernel_core::hal::{Access, TrapKind};

/// The interrupt bit of `scause` (its most significant bit).
pub const INTERRUPT: usize = 1 << (usize::BITS - 1);
/// Supervisor software interrupt (an IPI).
pub const IRQ_SOFTWARE: usize = 1;
/// Supervisor timer interrupt.
pub const IRQ_TIMER: usize = 5;
/// Supervisor external interrupt (from the PLIC).
pub const IRQ_EXTERNAL: usize = 9;

/// The kernel-visible kind of exception `code`, and the faulting address
/// (`stval`) when the kind has one; `None` for causes the kernel has no
/// kind for (environment calls, reserved codes).
pub fn classify(code: usize, stval: usize) -> Option<(TrapKind, Option<usize>)> {
    let page = |access| Some((TrapKind::PageFault(access), Some(stval)));
    match code {
        // Misaligned fetch, load, store/AMO (OpenSBI usually emulates the
        // data ones in M-mode).
        0 | 4 | 6 => Some((TrapKind::BusError, Some(stval))),
        // Access faults (PMP, no device) are reported as page faults.
        1 | 12 => page(Access::Execute),
        5 | 13 => page(Access::Read),
        7 | 15 => page(Access::Write),
        2 => Some((TrapKind::IllegalInstruction, None)),
        3 => Some((TrapKind::Breakpoint, None)),
        _ => None,
    }
}

/// A short name of a fault kind, for one-line reports.
pub fn describe(kind: TrapKind) -> &'static str {
    match kind {
        TrapKind::PageFault(Access::Read) => "load page fault",
        TrapKind::PageFault(Access::Write) => "store page fault",
        TrapKind::PageFault(Access::Execute) => "instruction page fault",
        TrapKind::PageFault(Access::Unknown) => "page fault",
        TrapKind::BusError => "misaligned access",
        TrapKind::IllegalInstruction => "illegal instruction",
        TrapKind::Breakpoint => "breakpoint",
        TrapKind::Arithmetic => "arithmetic fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_faults_carry_access_and_address() {
        assert_eq!(
            classify(13, 0x1234),
            Some((TrapKind::PageFault(Access::Read), Some(0x1234)))
        );
        assert_eq!(
            classify(15, 8),
            Some((TrapKind::PageFault(Access::Write), Some(8)))
        );
        assert_eq!(
            classify(12, 4),
            Some((TrapKind::PageFault(Access::Execute), Some(4)))
        );
        assert_eq!(
            classify(5, 1),
            Some((TrapKind::PageFault(Access::Read), Some(1)))
        );
        assert_eq!(
            classify(7, 2),
            Some((TrapKind::PageFault(Access::Write), Some(2)))
        );
        assert_eq!(
            classify(1, 3),
            Some((TrapKind::PageFault(Access::Execute), Some(3)))
        );
    }

    #[test]
    fn other_exceptions() {
        assert_eq!(
            classify(2, 0xdead),
            Some((TrapKind::IllegalInstruction, None))
        );
        assert_eq!(classify(3, 0), Some((TrapKind::Breakpoint, None)));
        assert_eq!(classify(4, 9), Some((TrapKind::BusError, Some(9))));
        for code in [8, 9, 10, 11, 14, 16, 18, 19, 24, 63] {
            assert_eq!(classify(code, 0), None, "code {code}");
        }
        assert_eq!(
            describe(TrapKind::PageFault(Access::Read)),
            "load page fault"
        );
    }

    #[test]
    fn interrupt_bit_is_the_msb() {
        assert_eq!(INTERRUPT | IRQ_TIMER, 0x8000_0000_0000_0005);
        assert_eq!(INTERRUPT | IRQ_SOFTWARE, 0x8000_0000_0000_0001);
        assert_eq!(INTERRUPT | IRQ_EXTERNAL, 0x8000_0000_0000_0009);
    }
}
