//! How the machine stops for an exit status: the decision alone, apart
//! from the devices that carry it out (`power`), so the host tests it.
//!
//! QEMU `virt` ends with a status only through its `sifive,test1`
//! finisher: `0x5555` exits 0, `(code << 16) | 0x3333` exits `code`. SBI
//! system reset (SRST) ends QEMU with status 0 whatever reason it is
//! given.
//!
//! INV-STOP-1: a nonzero status never ends the machine in a way QEMU
//! reports as success: it goes to the finisher, and when there is none
//! (or the finisher's write did not end the machine) the harts halt,
//! after one line saying why, so whoever waits sees a machine that did not
//! end, not a pass. Only status 0 falls back to SBI system reset.

/// Finisher value for "pass": QEMU exits 0.
const FINISHER_PASS: u32 = 0x5555;
/// Finisher value for "fail"; the exit code goes in bits 31..16.
const FINISHER_FAIL: u32 = 0x3333;

/// One way of stopping, tried in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Write this value to the finisher.
    Finisher(u32),
    /// SBI system reset (shutdown), then the legacy SBI shutdown.
    Reset,
    /// Say why on the console and wait forever.
    Halt,
}

/// The finisher command for exit status `code`.
const fn finisher_value(code: u8) -> u32 {
    if code == 0 {
        FINISHER_PASS
    } else {
        (code as u32) << 16 | FINISHER_FAIL
    }
}

/// What to try, in order, to stop with status `code` (INV-STOP-1).
pub(crate) const fn plan(code: u8, has_finisher: bool) -> [Option<Stop>; 3] {
    let last = if code == 0 { Stop::Reset } else { Stop::Halt };
    if has_finisher {
        [
            Some(Stop::Finisher(finisher_value(code))),
            Some(last),
            Some(Stop::Halt),
        ]
    } else {
        [Some(last), Some(Stop::Halt), None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_never_falls_back_to_a_reset_qemu_reports_as_success() {
        for has_finisher in [false, true] {
            for code in 1..=255u8 {
                let steps = plan(code, has_finisher);
                assert!(
                    !steps.contains(&Some(Stop::Reset)),
                    "status {code}: {steps:?}"
                );
                assert!(steps.contains(&Some(Stop::Halt)));
            }
        }
        assert_eq!(
            plan(3, true)[0],
            Some(Stop::Finisher(3 << 16 | FINISHER_FAIL))
        );
    }

    #[test]
    fn success_uses_the_finisher_then_a_reset() {
        assert_eq!(
            plan(0, true),
            [
                Some(Stop::Finisher(FINISHER_PASS)),
                Some(Stop::Reset),
                Some(Stop::Halt)
            ]
        );
        assert_eq!(plan(0, false), [Some(Stop::Reset), Some(Stop::Halt), None]);
    }
}
