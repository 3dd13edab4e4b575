//! The process table of a scope: slots that hold process records, named by
//! pids that carry a generation.
//!
//! A pid is `generation * SLOTS + index + 1` for slot `index`: the first
//! processes of a scope get 1, 2, 3, ...; when a slot is freed its
//! generation goes up, so the next process in it gets a new pid and a
//! stale pid finds nothing.
//!
//! Invariants:
//! - INV-TABLE-1: a pid names at most one record ever: a slot's generation
//!   only grows, and a slot whose next generation would not fit a pid is
//!   retired (never reused) instead of wrapping.
//! - INV-TABLE-2: at most `limit` slots are in use at once, and never
//!   more than [`SLOTS`]; a freed slot is reused before a new one is made,
//!   oldest freed first.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::Pid;
use crate::mem::ProcessId;

/// Slots of a table: the most processes a scope holds at once.
pub const SLOTS: usize = 16384;

/// The last generation a slot may reach and still name its pid in a `u32`.
const LAST_GENERATION: u32 = (u32::MAX - SLOTS as u32) / SLOTS as u32;

/// Why a record was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableError {
    /// `limit` slots are in use.
    Full,
    /// Every slot that could be used has been retired (INV-TABLE-1).
    NoPid,
}

struct Slot<T> {
    generation: u32,
    record: Option<T>,
}

/// A process table of records `T`.
pub(crate) struct Table<T> {
    slots: Vec<Slot<T>>,
    /// Free slots, oldest freed first (INV-TABLE-2).
    free: VecDeque<u32>,
    used: usize,
}

fn pid_of(index: usize, generation: u32) -> Pid {
    // In range: `generation <= LAST_GENERATION` and `index < SLOTS`.
    let n = u64::from(generation) * SLOTS as u64 + index as u64 + 1;
    ProcessId(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The slot and generation `pid` names (`None` for pid 0).
fn split(pid: Pid) -> Option<(usize, u32)> {
    let n = pid.0.checked_sub(1)?;
    let index = usize::try_from(n).ok()? % SLOTS;
    Some((index, n / SLOTS as u32))
}

impl<T> Table<T> {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: VecDeque::new(),
            used: 0,
        }
    }

    /// Add the record `make(pid)` makes for a new pid, if fewer than
    /// `limit` slots are in use; that pid.
    pub(crate) fn insert(
        &mut self,
        limit: usize,
        make: impl FnOnce(Pid) -> T,
    ) -> Result<Pid, TableError> {
        if self.used >= limit.min(SLOTS) {
            return Err(TableError::Full);
        }
        let index = match self.free.pop_front() {
            Some(i) => i as usize,
            None if self.slots.len() < SLOTS => {
                self.slots.push(Slot {
                    generation: 0,
                    record: None,
                });
                self.slots.len() - 1
            }
            // Every slot is in use or retired.
            None => return Err(TableError::NoPid),
        };
        let slot = &mut self.slots[index];
        let pid = pid_of(index, slot.generation);
        slot.record = Some(make(pid));
        self.used += 1;
        Ok(pid)
    }

    /// The record `pid` names, if it is still in the table.
    pub(crate) fn get(&self, pid: Pid) -> Option<&T> {
        let (index, generation) = split(pid)?;
        let slot = self.slots.get(index)?;
        (slot.generation == generation)
            .then_some(slot.record.as_ref())
            .flatten()
    }

    /// Take `pid`'s record out and free its slot for a later generation.
    pub(crate) fn remove(&mut self, pid: Pid) -> Option<T> {
        let (index, generation) = split(pid)?;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let record = slot.record.take()?;
        self.used -= 1;
        if slot.generation < LAST_GENERATION {
            slot.generation += 1;
            // `index < SLOTS`, so it fits.
            self.free.push_back(index as u32);
        }
        Some(record)
    }

    /// Every record, by slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.record.as_ref())
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pids_count_from_one() {
        let mut t = Table::new();
        let pids: Vec<_> = (0..3).map(|_| t.insert(SLOTS, |p| p.0).unwrap()).collect();
        assert_eq!(pids, [ProcessId(1), ProcessId(2), ProcessId(3)]);
        assert_eq!(t.get(ProcessId(2)), Some(&2));
        assert_eq!(t.get(ProcessId(0)), None);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_stale_pid_never_finds_the_next_record_in_its_slot() {
        let mut t = Table::new();
        let old = t.insert(SLOTS, |_| "old").unwrap();
        assert_eq!(t.remove(old), Some("old"));
        let new = t.insert(SLOTS, |_| "new").unwrap();
        assert_ne!(old, new);
        assert_eq!(split(old).map(|s| s.0), split(new).map(|s| s.0));
        assert_eq!(t.get(old), None);
        assert_eq!(t.remove(old), None);
        assert_eq!(t.get(new), Some(&"new"));
    }

    #[test]
    fn the_limit_counts_slots_in_use() {
        let mut t = Table::new();
        let a = t.insert(2, |_| ()).unwrap();
        t.insert(2, |_| ()).unwrap();
        assert_eq!(t.insert(2, |_| ()), Err(TableError::Full));
        t.remove(a);
        assert!(t.insert(2, |_| ()).is_ok());
        assert_eq!(t.insert(SLOTS + 5, |_| ()).map(|_| ()), Ok(()));
    }

    #[test]
    fn a_slot_at_its_last_generation_is_retired_not_wrapped() {
        let mut t: Table<()> = Table::new();
        let pid = t.insert(SLOTS, |_| ()).unwrap();
        t.slots[0].generation = LAST_GENERATION;
        t.slots[0].record = Some(());
        t.free.clear();
        let last = pid_of(0, LAST_GENERATION);
        // The last generation fits every slot's pid; the next would not.
        assert!(pid_of(SLOTS - 1, LAST_GENERATION).0 < u32::MAX);
        assert!(u64::from(LAST_GENERATION + 1) * SLOTS as u64 + SLOTS as u64 > u64::from(u32::MAX));
        assert_eq!(t.get(pid), None);
        assert_eq!(t.remove(last), Some(()));
        // Not reused: the next insert makes slot 1.
        let next = t.insert(SLOTS, |_| ()).unwrap();
        assert_eq!(next, ProcessId(2));
    }

    #[test]
    fn every_slot_retired_is_out_of_pids() {
        let mut t: Table<()> = Table::new();
        for _ in 0..SLOTS {
            t.insert(SLOTS, |_| ()).unwrap();
        }
        for slot in &mut t.slots {
            slot.generation = LAST_GENERATION;
        }
        let pids: Vec<_> = (0..SLOTS).map(|i| pid_of(i, LAST_GENERATION)).collect();
        for pid in pids {
            assert!(t.remove(pid).is_some());
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.insert(SLOTS, |_| ()), Err(TableError::NoPid));
    }

    #[test]
    fn pids_split_back_into_their_slot_and_generation() {
        for (index, generation) in [(0, 0), (5, 1), (SLOTS - 1, LAST_GENERATION)] {
            assert_eq!(split(pid_of(index, generation)), Some((index, generation)));
        }
    }
}
