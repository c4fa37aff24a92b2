//! Order-preserving, self-delimiting encoding of primary keys and index
//! values.
//!
//! Every stored key of a collection is built from these encodings, so a
//! range of values is a range of bytes and a lookup is a short scan:
//!
//! - **Order**: for two values of one type, the byte order of their
//!   encodings is the value order (`a < b` exactly when
//!   `encode(a) < encode(b)`; for floats, [`f64::total_cmp`]).
//! - **Prefix-free**: no encoding is a proper prefix of another of the
//!   same type, so a tuple is its parts' encodings one after another and
//!   orders as the tuple does, and an index entry `value || primary key`
//!   is found by a prefix scan of `value` alone.
//!
//! | type | encoding |
//! |---|---|
//! | `u8`..`u128`, `char` | big-endian, fixed width |
//! | `i8`..`i128` | sign bit flipped, big-endian, fixed width |
//! | `f32`, `f64` | bits, all flipped if negative, else the sign bit flipped |
//! | `bool` | one byte, 0 or 1 |
//! | `str`, `String`, `[u8]`, `Vec<u8>` | each `0x00` as `0x00 0xFF`, then `0x00 0x01` |
//! | `Option<T>` | `None`: `0x00`; `Some(v)`: `0x01` then `v` |
//! | tuples of up to 4 | the parts one after another |
//!
//! ```
//! use sealkv_collections::SortKey;
//!
//! let a = ("acme", 7u32).to_key_bytes();
//! let b = ("acme", 12u32).to_key_bytes();
//! let c = ("acme-eu", 0u32).to_key_bytes();
//! assert!(a < b && b < c); // tuple order is byte order
//! ```

/// A value that can be a primary key or an index value: see the
/// [module docs](self) for each type's encoding.
///
/// Implement it for a type of your own by encoding it as one of the
/// types above (a newtype as its inner value, a struct as a tuple of its
/// fields), so the guarantees carry over.
pub trait SortKey {
    /// Appends the encoding of `self` to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// Appends the name of the encoding (such as `u64` or `(str,u32)`):
    /// an index records it, and a lookup with a value of another encoding
    /// is refused rather than silently finding nothing.
    fn describe(out: &mut String);

    /// The encoding of `self`.
    fn to_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_key(&mut out);
        out
    }
}

/// The name of `K`'s encoding.
pub(crate) fn kind_of<K: SortKey + ?Sized>() -> String {
    let mut s = String::new();
    K::describe(&mut s);
    s
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn describe(out: &mut String) {
                out.push_str(stringify!($t));
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, u128);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                // Flipping the sign bit puts negatives (two's complement,
                // top bit set) below the non-negatives, in order.
                let mut bytes = self.to_be_bytes();
                bytes[0] ^= 0x80;
                out.extend_from_slice(&bytes);
            }
            fn describe(out: &mut String) {
                out.push_str(stringify!($t));
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, i128);

impl SortKey for f64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        let bits = self.to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        };
        out.extend_from_slice(&ordered.to_be_bytes());
    }
    fn describe(out: &mut String) {
        out.push_str("f64");
    }
}

impl SortKey for f32 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        let bits = self.to_bits();
        let ordered = if bits >> 31 == 1 {
            !bits
        } else {
            bits | 1 << 31
        };
        out.extend_from_slice(&ordered.to_be_bytes());
    }
    fn describe(out: &mut String) {
        out.push_str("f32");
    }
}

impl SortKey for bool {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn describe(out: &mut String) {
        out.push_str("bool");
    }
}

impl SortKey for char {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::from(*self).to_be_bytes());
    }
    fn describe(out: &mut String) {
        out.push_str("char");
    }
}

/// Bytes with every `0x00` escaped as `0x00 0xFF`, closed by `0x00 0x01`:
/// the terminator sorts below any escaped or plain byte that could follow,
/// so a string sorts before its extensions, and nothing inside a string
/// looks like its end.
fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

impl SortKey for str {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
    fn describe(out: &mut String) {
        out.push_str("str");
    }
}

impl SortKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
    fn describe(out: &mut String) {
        out.push_str("str");
    }
}

impl SortKey for [u8] {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self, out);
    }
    fn describe(out: &mut String) {
        out.push_str("bytes");
    }
}

impl SortKey for Vec<u8> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self, out);
    }
    fn describe(out: &mut String) {
        out.push_str("bytes");
    }
}

impl<T: SortKey + ?Sized> SortKey for &T {
    fn encode_key(&self, out: &mut Vec<u8>) {
        (**self).encode_key(out);
    }
    fn describe(out: &mut String) {
        T::describe(out);
    }
}

impl<T: SortKey> SortKey for Option<T> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode_key(out);
            }
        }
    }
    fn describe(out: &mut String) {
        out.push_str("option<");
        T::describe(out);
        out.push('>');
    }
}

macro_rules! tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: SortKey),+> SortKey for ($($name,)+) {
            fn encode_key(&self, out: &mut Vec<u8>) {
                $(self.$idx.encode_key(out);)+
            }
            fn describe(out: &mut String) {
                out.push('(');
                let mut first = true;
                $(
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    $name::describe(out);
                )+
                let _ = first;
                out.push(')');
            }
        }
    };
}
tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` if there is none (all bytes `0xFF`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn enc<K: SortKey + ?Sized>(k: &K) -> Vec<u8> {
        let mut v = Vec::new();
        k.encode_key(&mut v);
        v
    }

    /// Byte order is value order, and no encoding is a proper prefix of
    /// another.
    fn check<K: SortKey>(a: &K, b: &K, value_order: Ordering) -> Result<(), TestCaseError> {
        let (ea, eb) = (enc(a), enc(b));
        prop_assert_eq!(ea.cmp(&eb), value_order);
        if value_order != Ordering::Equal {
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn integers_order_as_bytes(a: i64, b: i64, c: u64, d: u64, e: i8, f: i8, g: i128, h: i128) {
            check(&a, &b, a.cmp(&b))?;
            check(&c, &d, c.cmp(&d))?;
            check(&e, &f, e.cmp(&f))?;
            check(&g, &h, g.cmp(&h))?;
        }

        #[test]
        fn floats_order_as_total_cmp(a: f64, b: f64, c: f32, d: f32) {
            check(&a, &b, a.total_cmp(&b))?;
            check(&c, &d, c.total_cmp(&d))?;
        }

        #[test]
        fn strings_and_bytes_order_as_bytes(
            a in "[\\x00-\\x02a-c\u{e9}]{0,6}",
            b in "[\\x00-\\x02a-c\u{e9}]{0,6}",
            c in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
            d in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
        ) {
            check(&a, &b, a.cmp(&b))?;
            check(&c, &d, c.cmp(&d))?;
            prop_assert_eq!(enc(&a), enc(a.as_str()));
        }

        #[test]
        fn options_and_tuples_order_as_values(
            a: (Option<u16>, String, i32),
            b: (Option<u16>, String, i32),
            c: (Vec<u8>, bool),
            d: (Vec<u8>, bool),
            e: (String, Option<String>, u8, char),
            f: (String, Option<String>, u8, char),
        ) {
            check(&a, &b, a.cmp(&b))?;
            check(&c, &d, c.cmp(&d))?;
            check(&e, &f, e.cmp(&f))?;
        }

        #[test]
        fn near_collisions_of_strings_in_tuples_keep_order(
            x in "[\\x00a]{0,4}", y in "[\\x00a]{0,4}", p: u8, q: u8,
        ) {
            // A terminator followed by a byte must never read as an
            // escaped zero followed by more of the string.
            let (a, b) = ((x.clone(), p), (y.clone(), q));
            check(&a, &b, a.cmp(&b))?;
        }
    }

    #[test]
    fn descriptions_name_the_encoding() {
        assert_eq!(kind_of::<u64>(), "u64");
        assert_eq!(kind_of::<&str>(), "str");
        assert_eq!(kind_of::<String>(), "str");
        assert_eq!(kind_of::<(String, Option<u32>)>(), "(str,option<u32>)");
        assert_eq!(kind_of::<(u8,)>(), "(u8)");
    }

    #[test]
    fn prefix_successor_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }
}
