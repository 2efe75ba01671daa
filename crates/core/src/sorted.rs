//! Stable sorting with one copy of the standard library's sort.
//!
//! `slice::sort_by` (and `BTreeMap`/`BTreeSet`'s `FromIterator` and `From<[T; N]>`, which sort
//! their input) compile the whole stable sort again for every element type and comparison:
//! some 4 KB of wasm each, 17 copies in the browser app. [`sort_by`] sorts positions instead,
//! with a single instance behind a `dyn` comparison, and then moves the elements: the same
//! order as `slice::sort_by` (stable: equal elements keep their order). To build a `BTreeMap` or
//! a `BTreeSet` from an iterator, `extend` an empty one (it inserts; it does not sort).

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably: exactly the order `v.sort_by(cmp)` gives.
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let order = stable_order(v.len(), &mut |a, b| cmp(&v[a], &v[b]));
    permute(v, &order);
}

/// Sorts `v` by `key`, stably: exactly the order `v.sort_by_key(key)` gives.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// The positions `0..n` in the order that sorts them by `cmp`, stably.
#[inline(never)]
fn stable_order(n: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    order
}

/// Moves the element at `order[i]` to `i`, for every `i` (`order` is a permutation of the
/// positions of `v`).
fn permute<T>(v: &mut [T], order: &[usize]) {
    for i in 0..v.len() {
        // Where the element first at `order[i]` is now: only the swaps at the positions before
        // `i` moved anything, and the one at `p` sent what was there to where `order[p]`'s
        // element was.
        let mut j = order[i];
        while j < i {
            j = order[j];
        }
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_same_order_as_the_standard_stable_sort(
            v in proptest::collection::vec((0u8..6, any::<u32>()), 0..80)
        ) {
            let mut ours = v.clone();
            sort_by_key(&mut ours, |x| x.0);
            let mut std = v.clone();
            std.sort_by_key(|x| x.0);
            prop_assert_eq!(&ours, &std);
            let mut ours = v.clone();
            sort_by(&mut ours, |a, b| b.0.cmp(&a.0));
            let mut std = v;
            std.sort_by_key(|x| std::cmp::Reverse(x.0));
            prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn strings_move_without_copies() {
        let mut v = vec!["c".to_string(), "a".into(), "b".into(), "a".into()];
        sort_by(&mut v, |a, b| a.cmp(b));
        assert_eq!(v, ["a", "a", "b", "c"]);
    }
}
