//! Value parsers with Redis's exact acceptance rules (`memtoull`, the `save` parser).

/// Redis's `memtoull`: digits then an optional unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, any
/// case). Like Redis 7.0 it lets a too-long number saturate and a unit overflow wrap.
pub(super) fn memtoull(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = &s[digits..];
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // Redis copies the digits into a 128-byte buffer first.
    if digits >= 128 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[..digits] {
        // strtoull's ERANGE saturates, and memtoull does not check errno.
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(v.wrapping_mul(mul))
}

/// C's `strtoll(s, &end, 10)` accepting only when the whole string is consumed (an empty string
/// is 0, as in Redis's save parser); saturates on overflow as strtoll does.
fn strtoll_full(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut v: i128 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + i128::from(s[i] - b'0')).min(i128::from(u64::MAX));
        i += 1;
    }
    if i == digits_start {
        // No conversion: strtoll leaves `end` at the start, so only "" passes the end check.
        return s.is_empty().then_some(0);
    }
    if i != s.len() {
        return None;
    }
    let v = if negative { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Redis's `setConfigSaveOption`: space-separated `seconds changes` pairs, seconds >= 1 and
/// changes >= 0; shown as `%jd %d` (changes is a C int).
pub(super) fn parse_save(value: &[u8]) -> Option<String> {
    if value.is_empty() {
        return Some(String::new());
    }
    let parts: Vec<&[u8]> = value.split(|&b| b == b' ').collect();
    if !parts.len().is_multiple_of(2) {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let v = strtoll_full(part)?;
        if (j % 2 == 0 && v < 1) || (j % 2 == 1 && v < 0) {
            return None;
        }
        nums.push(v);
    }
    let shown: Vec<String> = nums
        .chunks(2)
        .map(|c| format!("{} {}", c[0], c[1] as i32))
        .collect();
    Some(shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(memtoull(b""), Some(0));
        assert_eq!(memtoull(b"k"), Some(0));
        assert_eq!(memtoull(b"1K"), Some(1000));
        assert_eq!(memtoull(b"1KB"), Some(1024));
        assert_eq!(memtoull(b"1Gb"), Some(1 << 30));
        assert_eq!(memtoull(b"2g"), Some(2_000_000_000));
        assert_eq!(memtoull(b"01"), Some(1));
        assert_eq!(memtoull(b"-1"), None);
        assert_eq!(memtoull(b" 1"), None);
        assert_eq!(memtoull(b"1 "), None);
        assert_eq!(memtoull(b"1.5"), None);
        assert_eq!(memtoull(b"99999999999999999999"), Some(u64::MAX));
        assert_eq!(memtoull(b"17179869184gb"), Some(0));
    }

    #[test]
    fn save_parsing() {
        assert_eq!(parse_save(b"").as_deref(), Some(""));
        assert_eq!(parse_save(b"100 10").as_deref(), Some("100 10"));
        assert_eq!(parse_save(b"+5 -0").as_deref(), Some("5 0"));
        assert_eq!(
            parse_save(b"5 99999999999").as_deref(),
            Some("5 1215752191")
        );
        assert_eq!(parse_save(b"100  10"), None);
        assert_eq!(parse_save(b"1 2 3"), None);
        assert_eq!(parse_save(b"a b"), None);
        assert_eq!(parse_save(b"0 1"), None);
        assert_eq!(parse_save(b"1 -1"), None);
    }
}
