//! [`SplitMix64`]: the deterministic generator of sealkv's simulations.
//!
//! The simulated file system tears unsynced writes by it, and the test
//! helpers, the crash-kill harness, the examples and the benchmarks draw
//! their reproducible choices from it: the same seed gives the same
//! stream on every platform and in every build. It is not cryptographic
//! randomness — keys, salts and nonces come from the operating system
//! (`sealkv_crypto_envelope::random`).
//!
//! It lives here, at the bottom of the workspace, because the simulated
//! file system needs it and every other crate already depends on this one.

/// The increment of the state (2^64 divided by the golden ratio, odd).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Sebastiano Vigna's SplitMix64: a 64-bit state advanced by a constant
/// and passed through a bijective mix. Fast, and good enough to scatter
/// test choices; never for secrets.
///
/// ```
/// use sealkv_fileio::SplitMix64;
///
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        finalize(self.state)
    }

    /// A number in `0..n` (`0` when `n` is 0). The modulo's bias is
    /// negligible for the small ranges tests draw from.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A stateless mix of `x`: the first number of the stream seeded with
    /// `x`. A bijection on `u64`, so distinct inputs give distinct outputs
    /// (a scattered order of record numbers, a seed per cycle).
    pub const fn mix(x: u64) -> u64 {
        finalize(x.wrapping_add(GOLDEN))
    }
}

const fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_stream() {
        // The first outputs of the reference implementation seeded with 0
        // (Vigna, splitmix64.c).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(g.next_u64(), 0x06C4_5D18_8009_454F);
        assert_eq!(SplitMix64::mix(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let (mut a, mut b) = (SplitMix64::new(5), SplitMix64::new(5));
        for _ in 0..100 {
            let x = a.below(7);
            assert_eq!(x, b.below(7));
            assert!(x < 7);
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
        assert_eq!(SplitMix64::new(3).below(0), 0);
    }
}
