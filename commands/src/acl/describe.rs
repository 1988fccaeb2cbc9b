//! A selector written back as rules (Redis 7.0's `ACLDescribeSelector`): the key patterns, the
//! channels, then the fewest category rules that come close to the command bitmap, chosen
//! greedily as Redis chooses them, and single-command rules for the rest. Redis walks its
//! command table in hash order, so its single-command rules come in an order of its own; the
//! rules mean the same.

use super::ids::{self, ids};
use super::selector::{READ, Selector, WRITE};
use crate::cmd::command::ACL_ORDER;

/// The whole selector: `~keys &channels` then the command rules.
pub(crate) fn selector(s: &Selector) -> String {
    let mut words = vec![keys(s)];
    if !s.all_channels {
        // The channels listed are the only ones after this reset.
        words.push("resetchannels".to_owned());
    }
    words.push(channels(s));
    words.push(command_rules(s));
    words.retain(|w| !w.is_empty());
    words.join(" ")
}

/// The key patterns (GETUSER's `keys`): `~*`, or each pattern, blank-separated.
pub(crate) fn keys(s: &Selector) -> String {
    if s.all_keys {
        return "~*".to_owned();
    }
    let p: Vec<String> = s.patterns.iter().map(|(f, p)| key_pattern(*f, p)).collect();
    p.join(" ")
}

/// The channel patterns (GETUSER's `channels`): `&*`, or each `&pattern`, blank-separated.
pub(crate) fn channels(s: &Selector) -> String {
    if s.all_channels {
        return "&*".to_owned();
    }
    let c: Vec<String> = s
        .channels
        .iter()
        .map(|c| format!("&{}", String::from_utf8_lossy(c)))
        .collect();
    c.join(" ")
}

/// `~pattern`, `%R~pattern` or `%W~pattern`.
pub(crate) fn key_pattern(flags: u8, pattern: &[u8]) -> String {
    let prefix = match flags {
        f if f == READ | WRITE => "~",
        READ => "%R~",
        _ => "%W~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(pattern))
}

/// `ACLDescribeSelectorCommandRules`.
pub(crate) fn command_rules(s: &Selector) -> String {
    let additive = !s.bit(ids::future_bit());
    let mut rules = String::from(if additive { "-@all " } else { "+@all " });
    let mut fake = Selector::new(false);
    fake.apply(if additive { b"-@all" } else { b"+@all" })
        .expect("valid");
    // What the chosen categories have not yet accounted for.
    let mut left = s.clone();
    let mut applied = [false; 32];
    loop {
        let mut best = None;
        let (mut min_diff, mut max_same) = (usize::MAX, 0);
        for (j, _) in ACL_ORDER.iter().enumerate() {
            if applied[j] {
                continue;
            }
            let (on, off) = left.count_category(1 << j);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                best = Some(j);
                min_diff = diff;
                max_same = same;
            }
        }
        let Some(j) = best else { break };
        fake.change_category(1 << j, additive);
        left.change_category(1 << j, !additive);
        rules.push_str(if additive { "+@" } else { "-@" });
        rules.push_str(ACL_ORDER[j]);
        rules.push(' ');
        applied[j] = true;
    }
    for (id, cmd) in ids().commands.iter().enumerate() {
        if cmd.parent.is_some() {
            continue;
        }
        single(s, &mut fake, id, &mut rules);
        for &sub in &cmd.subs {
            single(s, &mut fake, sub, &mut rules);
        }
    }
    rules.pop();
    debug_assert_eq!(
        fake.commands, s.commands,
        "rules {rules:?} do not rebuild the bitmap"
    );
    rules
}

/// The rule for one command whose bit still differs, and its allowed first arguments.
fn single(s: &Selector, fake: &mut Selector, id: usize, rules: &mut String) {
    let name = &ids().commands[id].full_name;
    let bit = s.bit(id);
    if bit != fake.bit(id) {
        rules.push(if bit { '+' } else { '-' });
        rules.push_str(name);
        rules.push(' ');
        fake.change(id, bit);
    }
    if !bit && let Some(args) = s.first_args.get(&id) {
        for a in args {
            rules.push_str(&format!("+{name}|{a} "));
        }
    }
}
