//! A growable set of small non-negative integers: the seqs a socket received in one channel.

/// A growable set of non-negative integers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    /// Adds `i`; returns false when it was already there.
    pub fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        !was
    }

    pub fn contains(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64u64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w as u64 * 64 + b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Bitmap;

    #[test]
    fn bitmap_counts_and_iterates_members() {
        let mut b = Bitmap::default();
        assert!(b.is_empty());
        assert!(b.insert(0));
        assert!(b.insert(200));
        assert!(!b.insert(200));
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 200]);
        assert!(!b.contains(199));
        assert!(b.contains(200));
        assert!(!b.is_empty());
    }
}
