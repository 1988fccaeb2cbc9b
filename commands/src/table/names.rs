//! The command-name table: finds a command by name, case-insensitively, without allocating.
//!
//! This runs once for every command a client sends, so it is shaped for the common case: a name
//! of at most 16 bytes is loaded into two words, lower-cased eight bytes at a time, hashed with
//! two multiplies and compared as two words. Byte-by-byte hashing and
//! `eq_ignore_ascii_case` cost ~120 instructions per GET (callgrind), a tenth of the server's
//! user-space work at `-P 16`; longer names (a handful of rarely sent commands such as
//! `GEORADIUSBYMEMBER_RO`) keep that path.

/// Longest command name the table can hold.
pub(super) const MAX_NAME: usize = 32;

/// Names up to this length take the word path.
const SHORT: usize = 16;

/// Slots of the table: a power of two well above the number of commands, so probes are short.
const SLOTS: usize = 1024;
const _: () = assert!(SLOTS.is_power_of_two());

/// A name as the table compares it: lower-cased, zero-padded words for a short name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Short { words: [u64; 2], len: u8 },
    Long,
}

impl Key {
    #[inline]
    fn of(name: &[u8]) -> Key {
        if name.len() > SHORT {
            return Key::Long;
        }
        let [lo, hi] = load_padded(name);
        Key::Short {
            words: [lower_word(lo), lower_word(hi)],
            len: name.len() as u8,
        }
    }

    #[inline]
    fn hash(&self, name: &[u8]) -> usize {
        match *self {
            Key::Short { words, .. } => {
                let h = words[0].wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ words[1].wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
                (h >> 40) as usize
            }
            Key::Long => long_hash(name),
        }
    }
}

/// The bytes of `name` (at most 16) as two little-endian words, zero-padded, read with two
/// overlapping loads per word instead of a copy into a padded buffer (a `memcpy` call).
#[inline]
fn load_padded(name: &[u8]) -> [u64; 2] {
    fn u16_at(b: &[u8], at: usize) -> u64 {
        u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
    }
    fn u32_at(b: &[u8], at: usize) -> u64 {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().expect("4 bytes"),
        ))
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    }
    let len = name.len();
    // Two loads covering the first and the last bytes overlap in the middle; the bytes they
    // share are equal, so OR-ing them is exact.
    match len {
        0 => [0, 0],
        1 => [u64::from(name[0]), 0],
        2..=3 => [
            u16_at(name, 0) | u16_at(name, len - 2) << ((len - 2) * 8),
            0,
        ],
        4..=7 => [
            u32_at(name, 0) | u32_at(name, len - 4) << ((len - 4) * 8),
            0,
        ],
        8 => [u64_at(name, 0), 0],
        _ => [u64_at(name, 0), u64_at(name, len - 8) >> ((16 - len) * 8)],
    }
}

/// ASCII lower case of eight bytes at once: `b | 0x20` for the bytes in `A..=Z`, every other
/// byte (digits, `_`, `-`, non-ASCII) unchanged.
#[inline]
fn lower_word(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let low7 = x & LOW7;
    // Per byte (no carries between bytes: each sum stays below 0x100): bit 7 set when
    // the byte's low seven bits are >= 'A', and when they are > 'Z'.
    let ge_a = low7 + 0x3f3f_3f3f_3f3f_3f3f;
    let gt_z = low7 + 0x2525_2525_2525_2525;
    let upper = (ge_a ^ gt_z) & !x & HIGH;
    x | (upper >> 2)
}

/// Case-insensitive hash of a long name (ASCII case folded by clearing bit 5, which leaves
/// digits, `_` and `-` distinct from each other).
#[inline]
fn long_hash(name: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h = (h ^ u64::from(b & !0x20)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 29)) as usize
}

/// One occupied slot.
#[derive(Clone, Copy)]
struct Slot<T> {
    key: Key,
    name: &'static str,
    value: T,
}

/// An open-addressed, linearly probed map from command names to `T`, built once.
pub(super) struct NameTable<T> {
    slots: Vec<Option<Slot<T>>>,
}

impl<T: Copy> NameTable<T> {
    /// Builds the table. Panics on a name longer than [`MAX_NAME`] or defined twice: both are
    /// bugs in the command table, caught by its unit tests.
    pub(super) fn new(entries: impl IntoIterator<Item = (&'static str, T)>) -> NameTable<T> {
        let mut table = NameTable {
            slots: vec![None; SLOTS],
        };
        let mut count = 0;
        for (name, value) in entries {
            assert!(name.len() <= MAX_NAME, "command name {name} too long");
            assert!(
                table.get(name.as_bytes()).is_none(),
                "command {name} defined twice"
            );
            let key = Key::of(name.as_bytes());
            let mut i = key.hash(name.as_bytes()) & (SLOTS - 1);
            while table.slots[i].is_some() {
                i = (i + 1) & (SLOTS - 1);
            }
            table.slots[i] = Some(Slot { key, name, value });
            count += 1;
        }
        assert!(count * 2 < SLOTS, "lookup table too full");
        table
    }

    /// The value of `name`, compared case-insensitively.
    #[inline]
    pub(super) fn get(&self, name: &[u8]) -> Option<T> {
        if name.len() > MAX_NAME {
            return None;
        }
        let key = Key::of(name);
        let mut i = key.hash(name) & (SLOTS - 1);
        loop {
            let slot = self.slots[i].as_ref()?;
            if slot.key == key
                && (key != Key::Long || slot.name.as_bytes().eq_ignore_ascii_case(name))
            {
                return Some(slot.value);
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lower_word_matches_to_ascii_lowercase_on_every_byte() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'Q'; 8];
                bytes[pos] = b;
                let want = u64::from_le_bytes(bytes.map(|c| c.to_ascii_lowercase()));
                assert_eq!(
                    lower_word(u64::from_le_bytes(bytes)),
                    want,
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn load_padded_is_the_zero_padded_bytes() {
        let bytes: Vec<u8> = (1..=16).collect();
        for len in 0..=16 {
            let mut buf = [0u8; 16];
            buf[..len].copy_from_slice(&bytes[..len]);
            let want = [
                u64::from_le_bytes(buf[..8].try_into().unwrap()),
                u64::from_le_bytes(buf[8..].try_into().unwrap()),
            ];
            assert_eq!(load_padded(&bytes[..len]), want, "len {len}");
        }
    }

    proptest! {
        #[test]
        fn lower_word_is_to_ascii_lowercase(bytes in any::<[u8; 8]>()) {
            let want = u64::from_le_bytes(bytes.map(|c| c.to_ascii_lowercase()));
            prop_assert_eq!(lower_word(u64::from_le_bytes(bytes)), want);
        }

        #[test]
        fn get_agrees_with_eq_ignore_ascii_case(name in proptest::collection::vec(any::<u8>(), 0..40)) {
            let names = ["get", "set", "georadiusbymember_ro", "client", "a", "x-y_z"];
            let table = NameTable::new(names.iter().enumerate().map(|(i, n)| (*n, i)));
            let want = names.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(&name));
            prop_assert_eq!(table.get(&name), want);
        }
    }

    #[test]
    fn short_long_and_boundary_names() {
        let names = [
            "get",
            "sixteen_bytes_ab",
            "seventeen_bytes_a",
            "georadiusbymember_ro",
        ];
        let table = NameTable::new(names.iter().enumerate().map(|(i, n)| (*n, i)));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(table.get(n.as_bytes()), Some(i));
            assert_eq!(table.get(n.to_ascii_uppercase().as_bytes()), Some(i));
        }
        assert_eq!(table.get(b"get\0"), None);
        assert_eq!(table.get(b"ge"), None);
        assert_eq!(table.get(b"sixteen_bytes_aB"), Some(1));
        assert_eq!(table.get(b"sixteen_bytes_a"), None);
        assert_eq!(table.get(b"seventeen_bytes_b"), None);
        assert_eq!(table.get(&[b'x'; 100]), None);
    }
}
