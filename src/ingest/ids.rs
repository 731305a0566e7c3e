//! Sets of event ids kept as runs of consecutive ids.
//!
//! GDELT numbers a batch's events consecutively, so the ids of a whole file are one run or a
//! few, whatever its row count: a set of runs stays small where a set of ids would grow with
//! the file. The catalog keeps the runs each stored file holds, per feed, to store every
//! GlobalEventID once.

use std::collections::BTreeMap;

/// A set of ids as disjoint runs `first..=last` (`insert` merges adjacent runs; `push_run`
/// keeps runs as given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdRuns {
    /// `first` → `last` of each run.
    runs: BTreeMap<i64, i64>,
    len: u64,
}

impl IdRuns {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id`; false if it was there already.
    pub fn insert(&mut self, id: i64) -> bool {
        let before = self.runs.range(..=id).next_back().map(|(&f, &l)| (f, l));
        if before.is_some_and(|(_, last)| id <= last) {
            return false;
        }
        let joins_before = before
            .filter(|&(_, last)| last.checked_add(1) == Some(id))
            .map(|(first, _)| first);
        let joins_after = id
            .checked_add(1)
            .filter(|next| self.runs.contains_key(next));
        match (joins_before, joins_after) {
            (Some(first), Some(next)) => {
                let last = self.runs.remove(&next).expect("checked above");
                self.runs.insert(first, last);
            }
            (Some(first), None) => {
                self.runs.insert(first, id);
            }
            (None, Some(next)) => {
                let last = self.runs.remove(&next).expect("checked above");
                self.runs.insert(id, last);
            }
            (None, None) => {
                self.runs.insert(id, id);
            }
        }
        self.len += 1;
        true
    }

    /// Adds a whole run `first..=last`; runs must come in ascending order and not overlap
    /// what is there (as runs read back from the catalog do).
    pub fn push_run(&mut self, first: i64, last: i64) {
        debug_assert!(first <= last);
        debug_assert!(self.runs.last_key_value().is_none_or(|(_, l)| *l < first));
        self.runs.insert(first, last);
        self.len += last.abs_diff(first) + 1;
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: i64) -> bool {
        self.runs
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &last)| id <= last)
    }

    /// How many ids the set holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The runs, ascending, as `(first, last)`.
    pub fn runs(&self) -> Vec<(i64, i64)> {
        self.runs.iter().map(|(&f, &l)| (f, l)).collect()
    }

    /// The ids of this set that are not in `other`.
    pub fn difference(&self, other: &IdRuns) -> IdRuns {
        let mut out = IdRuns::new();
        for (&first, &last) in &self.runs {
            // The next id of this run not yet accounted for; `None` once the run is done.
            let mut next = Some(first);
            let from = other
                .runs
                .range(..=first)
                .next_back()
                .map_or(first, |(&f, _)| f);
            for (&o_first, &o_last) in other.runs.range(from..=last) {
                let Some(start) = next else { break };
                if o_last < start {
                    continue;
                }
                if o_first > start {
                    out.push_run(start, o_first - 1);
                }
                next = o_last.checked_add(1).filter(|n| *n <= last);
            }
            if let Some(start) = next {
                out.push_run(start, last);
            }
        }
        out
    }

    /// The ids in both sets.
    pub fn intersection(&self, other: &IdRuns) -> IdRuns {
        let mut out = IdRuns::new();
        let mut mine = self.runs.iter().peekable();
        let mut theirs = other.runs.iter().peekable();
        while let (Some((&a_first, &a_last)), Some((&b_first, &b_last))) =
            (mine.peek().copied(), theirs.peek().copied())
        {
            let first = a_first.max(b_first);
            let last = a_last.min(b_last);
            if first <= last {
                out.push_run(first, last);
            }
            if a_last < b_last {
                mine.next();
            } else {
                theirs.next();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_collapse_into_one_run_in_any_order() {
        let mut ids = IdRuns::new();
        for id in [5, 3, 4, 7, 6, 1] {
            assert!(ids.insert(id), "{id}");
        }
        assert_eq!(ids.runs(), vec![(1, 1), (3, 7)]);
        assert!(!ids.insert(4));
        assert!(!ids.insert(7));
        assert!(ids.insert(2));
        assert_eq!(ids.runs(), vec![(1, 7)]);
        assert_eq!(ids.len(), 7);
        assert!(ids.contains(1) && ids.contains(7) && !ids.contains(0) && !ids.contains(8));
        assert!(ids.insert(i64::MAX) && ids.insert(i64::MIN));
        assert_eq!(
            ids.runs(),
            vec![(i64::MIN, i64::MIN), (1, 7), (i64::MAX, i64::MAX)]
        );
    }

    #[test]
    fn intersection_keeps_only_shared_ids() {
        let mut a = IdRuns::new();
        a.push_run(1, 10);
        a.push_run(20, 30);
        let mut b = IdRuns::new();
        b.push_run(5, 22);
        b.push_run(29, 40);
        let both = a.intersection(&b);
        assert_eq!(both.runs(), vec![(5, 10), (20, 22), (29, 30)]);
        assert_eq!(both.len(), 6 + 3 + 2);
        assert!(a.intersection(&IdRuns::new()).is_empty());
        let rest = a.difference(&b);
        assert_eq!(rest.runs(), vec![(1, 4), (23, 28)]);
        assert_eq!(rest.len() + both.len(), a.len());
        assert_eq!(a.difference(&IdRuns::new()), a);
        let mut inner = IdRuns::new();
        inner.push_run(3, 3);
        inner.push_run(i64::MAX - 1, i64::MAX);
        let mut wide = IdRuns::new();
        wide.push_run(1, 5);
        wide.push_run(i64::MAX - 3, i64::MAX);
        assert_eq!(
            wide.difference(&inner).runs(),
            vec![(1, 2), (4, 5), (i64::MAX - 3, i64::MAX - 2)]
        );
    }
}
