//! Mapping lists of frames with as few MMU calls as possible.
//!
//! Frames that are physically contiguous and land at contiguous virtual
//! addresses form one run and cost one [`Mmu::map`] call: on hosted that is
//! one host mapping, which keeps the process far below Linux's
//! `vm.max_map_count` even for gigabytes mapped in single frames.

use crate::hal::{HalError, Mmu, PAGE_SIZE, Perms, PhysAddr, TableFrames};

/// Iterator over the physically contiguous runs of a frame list, as
/// `(first frame, length in bytes, offset of the run in the list in bytes)`.
pub struct FrameRuns<'a> {
    frames: &'a [PhysAddr],
    pos: usize,
}

impl<'a> FrameRuns<'a> {
    /// Runs of `frames`, in list order.
    pub const fn new(frames: &'a [PhysAddr]) -> Self {
        Self { frames, pos: 0 }
    }
}

impl Iterator for FrameRuns<'_> {
    type Item = (PhysAddr, usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let first = *self.frames.get(self.pos)?;
        let start = self.pos;
        self.pos += 1;
        while self
            .frames
            .get(self.pos)
            .is_some_and(|f| f.0 == first.0 + ((self.pos - start) * PAGE_SIZE) as u64)
        {
            self.pos += 1;
        }
        Some((first, (self.pos - start) * PAGE_SIZE, start * PAGE_SIZE))
    }
}

/// Map `frames` (page aligned, in order) at `va..va + frames.len() * 4096`
/// with `perms`, one MMU call per physically contiguous run, and flush.
/// Returns the number of runs.
///
/// # Errors
/// The first [`HalError`] an MMU call returns; every run mapped before it is
/// unmapped again, so nothing stays mapped.
///
/// # Safety
/// As for [`Mmu::map`], for every frame and the whole virtual range.
pub unsafe fn map_frames(
    mmu: &impl Mmu,
    va: usize,
    frames: &[PhysAddr],
    perms: Perms,
    tables: &dyn TableFrames,
) -> Result<usize, HalError> {
    let mut runs = 0;
    for (pa, len, offset) in FrameRuns::new(frames) {
        // SAFETY: the caller's contract covers every frame and the range.
        match unsafe { mmu.map(va + offset, pa, len, perms, tables) } {
            Ok(flush) => {
                mmu.flush(flush);
                runs += 1;
            }
            Err(e) => {
                if offset > 0 {
                    // SAFETY: `va..va + offset` was mapped just above by this
                    // call and is owned by the caller.
                    if let Ok(flush) = unsafe { mmu.unmap(va, offset) } {
                        mmu.flush(flush);
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn contiguous_frames_form_one_run() {
        let frames: Vec<_> = (10..20).map(PhysAddr::of_frame).collect();
        let runs: Vec<_> = FrameRuns::new(&frames).collect();
        assert_eq!(runs, [(PhysAddr::of_frame(10), 10 * PAGE_SIZE, 0)]);
    }

    #[test]
    fn gaps_and_reversals_split_runs() {
        let frames: Vec<_> = [1, 2, 3, 7, 6, 8]
            .into_iter()
            .map(PhysAddr::of_frame)
            .collect();
        let runs: Vec<_> = FrameRuns::new(&frames)
            .map(|(pa, len, off)| (pa.frame(), len / PAGE_SIZE, off / PAGE_SIZE))
            .collect();
        assert_eq!(runs, [(1, 3, 0), (7, 1, 3), (6, 1, 4), (8, 1, 5)]);
        assert_eq!(FrameRuns::new(&[]).count(), 0);
    }
}
