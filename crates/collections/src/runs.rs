//! [`Runs`]: byte strings kept end to end in one buffer, so a query that
//! reads many primary keys or records allocates for all of them at once,
//! not once each.

/// Byte strings in one buffer, in the order pushed.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Runs {
    /// Appends `run`.
    pub(crate) fn push(&mut self, run: &[u8]) {
        self.bytes.extend_from_slice(run);
        self.ends.push(self.bytes.len());
    }

    /// How many runs it holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The runs, in the order pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_read_back_as_pushed_empty_ones_too() {
        let mut runs = Runs::default();
        assert_eq!(runs.iter().count(), 0);
        let pushed: [&[u8]; 4] = [b"ab", b"", b"c", b"defg"];
        for run in pushed {
            runs.push(run);
        }
        assert_eq!(runs.len(), 4);
        assert_eq!(runs.iter().collect::<Vec<_>>(), pushed);
    }
}
