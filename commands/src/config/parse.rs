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

/// The client classes of `client-output-buffer-limit`, in the order CONFIG GET shows them.
pub(super) const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Redis's `client-output-buffer-limit`: `<class> <hard> <soft> <soft_seconds>` groups (class
/// `normal`, `replica`/`slave` or `pubsub`; sizes with units) applied over `current`, the
/// three classes' values shown as CONFIG GET shows them. All or nothing, as Redis.
pub(super) fn parse_output_limits(value: &[u8], current: &str) -> Result<String, String> {
    let mut limits = [[0u64; 3]; 3];
    let words: Vec<&str> = current.split_ascii_whitespace().collect();
    for group in words.chunks_exact(4) {
        if let Some(c) = OUTPUT_CLASSES.iter().position(|n| *n == group[0]) {
            for (slot, w) in limits[c].iter_mut().zip(&group[1..]) {
                *slot = w.parse().unwrap_or(0);
            }
        }
    }
    let text = String::from_utf8_lossy(value);
    let args: Vec<&str> = text.split_ascii_whitespace().collect();
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
    }
    for group in args.chunks_exact(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err(
                    "Invalid client class specified in buffer limit configuration.".to_owned(),
                );
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = memtoull(group[1].as_bytes()).ok_or_else(bad)?;
        let soft = memtoull(group[2].as_bytes()).ok_or_else(bad)?;
        let secs = group[3]
            .parse::<i64>()
            .ok()
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(bad)?;
        limits[class] = [hard, soft, secs];
    }
    Ok(OUTPUT_CLASSES
        .iter()
        .zip(limits)
        .map(|(name, [h, s, t])| format!("{name} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod output_limit_tests {
    use super::*;

    const DEFAULT: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

    #[test]
    fn groups_replace_their_class_only() {
        assert_eq!(
            parse_output_limits(b"pubsub 1mb 512kb 5", DEFAULT).unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 5"
        );
        assert_eq!(
            parse_output_limits(b"replica 1 2 3 NORMAL 4 5 6", DEFAULT).unwrap(),
            "normal 4 5 6 slave 1 2 3 pubsub 33554432 8388608 60"
        );
        assert_eq!(parse_output_limits(b"", DEFAULT).unwrap(), DEFAULT);
    }

    #[test]
    fn bad_groups_are_refused_with_redis_reasons() {
        let e = |v: &[u8]| parse_output_limits(v, DEFAULT).unwrap_err();
        assert!(e(b"pubsub 1 2").starts_with("Wrong number"));
        assert!(e(b"master 1 2 3").starts_with("Invalid client class"));
        assert!(e(b"pubsub x 2 3").starts_with("Error in hard"));
        assert!(e(b"pubsub 1 2 -3").starts_with("Error in hard"));
    }
}

/// Redis's `sdssplitargs` ([`crate::resp::parser::split_words`], the inline-command splitter)
/// for text: configuration lines, the AOF manifest. None for unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let words = crate::resp::parser::split_words(line.as_bytes())?;
    Some(
        words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod split_tests {
    use super::*;

    fn words(line: &str) -> Option<Vec<String>> {
        split_args(line)
    }

    #[test]
    fn arguments_split_as_redis_splits_them() {
        assert_eq!(
            words("save 900 1  300\t10").unwrap(),
            ["save", "900", "1", "300", "10"]
        );
        assert_eq!(
            words(r#"requirepass "a b\"c""#).unwrap(),
            ["requirepass", "a b\"c"]
        );
        assert_eq!(words(r#"x "\x41\n""#).unwrap(), ["x", "A\n"]);
        assert_eq!(words(r"x 'it\'s'").unwrap(), ["x", "it's"]);
        assert_eq!(words(r#"save """#).unwrap(), ["save", ""]);
        assert_eq!(words("   ").unwrap(), Vec::<String>::new());
        assert_eq!(words(r#"x "open"#), None, "unbalanced");
        assert_eq!(
            words(r#"x "a"b"#),
            None,
            "a closing quote needs a blank after it"
        );
        assert_eq!(words("x 'open"), None);
    }
}
