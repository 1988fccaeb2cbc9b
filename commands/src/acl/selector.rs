//! A set of permissions (Redis 7.0's `aclSelector`): the commands (a bitmap by command id), the
//! key patterns (each for reading, writing or both) and the Pub/Sub channel patterns. A user
//! has its root selector and any number of `(...)` selectors; a command is allowed when one of
//! them allows it.

use std::collections::HashMap;

use super::ids::{self, ids};
use super::{Denied, RuleError};

/// A key pattern may be used to read keys.
pub(crate) const READ: u8 = 1;
/// A key pattern may be used to write keys.
pub(crate) const WRITE: u8 = 2;

/// One selector's permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Every key (`~*`, `allkeys`).
    pub(crate) all_keys: bool,
    /// Every channel (`&*`, `allchannels`).
    pub(crate) all_channels: bool,
    /// `+@all` and no command taken away since.
    pub(crate) all_commands: bool,
    /// Bit per command id; the last bit is "commands added later".
    pub(crate) commands: Vec<u64>,
    /// First arguments allowed of a command otherwise denied (`+select|0`), by command id.
    pub(crate) first_args: HashMap<usize, Vec<String>>,
    /// Key patterns with their `READ`/`WRITE` flags, in the order added.
    pub(crate) patterns: Vec<(u8, Vec<u8>)>,
    /// Channel patterns, in the order added.
    pub(crate) channels: Vec<Vec<u8>>,
}

impl Selector {
    /// An empty selector: no commands, keys or channels, except every channel when
    /// `acl-pubsub-default` is `allchannels`.
    pub(crate) fn new(all_channels: bool) -> Selector {
        Selector {
            all_keys: false,
            all_channels,
            all_commands: false,
            commands: vec![0; ids::words()],
            first_args: HashMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Whether it allows everything (the default user's fast path).
    pub(crate) fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    pub(crate) fn bit(&self, id: usize) -> bool {
        self.commands[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.commands[id / 64] |= 1 << (id % 64);
        } else {
            self.commands[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Redis's `ACLChangeSelectorPerm`: the command and all its subcommands.
    pub(crate) fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.first_args.remove(&id);
        for &sub in &ids().commands[id].subs {
            self.set_bit(sub, on);
        }
    }

    /// Redis's `ACLSetSelectorCommandBitsForCategory`: containers in the category with all
    /// their subcommands, then subcommands in it.
    pub(crate) fn change_category(&mut self, category: u32, on: bool) {
        for (id, cmd) in ids().commands.iter().enumerate() {
            if cmd.categories & category != 0 {
                if cmd.parent.is_none() {
                    self.change(id, on);
                } else {
                    self.set_bit(id, on);
                    self.first_args.remove(&id);
                }
            }
        }
    }

    /// Commands of `category` this selector allows and denies.
    pub(crate) fn count_category(&self, category: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (id, cmd) in ids().commands.iter().enumerate() {
            if cmd.categories & category != 0 {
                if self.bit(id) { on += 1 } else { off += 1 }
            }
        }
        (on, off)
    }

    /// Applies one rule (Redis's `ACLSetSelector`).
    pub(crate) fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            // Only inside `(...)`: a user's empty rule is skipped before it gets here.
            return Err(RuleError::Syntax);
        }
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.all_keys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.patterns.clear();
        } else if is("allchannels") || op == b"&*" {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.commands.fill(u64::MAX);
            self.all_commands = true;
            self.first_args.clear();
        } else if is("nocommands") || is("-@all") {
            self.commands.fill(0);
            self.all_commands = false;
            self.first_args.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            self.add_key_pattern(op)?;
        } else if op[0] == b'&' {
            if self.all_channels {
                return Err(RuleError::AfterAllChannels);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.all_channels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            self.allow_command(&op[1..])?;
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = ids().lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let category = ids::category(&op[2..]).ok_or(RuleError::Unknown)?;
            self.change_category(category, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// `~pattern`, `%R~pattern`, `%W~pattern`, `%RW~pattern`.
    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        let mut flags = 0;
        let mut offset = 1;
        if op[0] == b'%' {
            loop {
                match op.get(offset).map(u8::to_ascii_uppercase) {
                    Some(b'R') if flags & READ == 0 => flags |= READ,
                    Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                    Some(b'~') => {
                        offset += 1;
                        break;
                    }
                    // Redis's loop ends at the end of the rule without a `~` and takes what
                    // follows (nothing) as the pattern.
                    None => break,
                    Some(_) => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
        } else {
            flags = READ | WRITE;
        }
        let pattern = op.get(offset..).unwrap_or_default();
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|(_, p)| p == pattern) {
            Some((f, _)) => *f |= flags,
            None => self.patterns.push((flags, pattern.to_vec())),
        }
        self.all_keys = false;
        Ok(())
    }

    /// `+command`, `+container|sub`, or the deprecated `+command|first-arg`.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let id = ids().lookup(name).ok_or(RuleError::Unknown)?;
            self.change(id, true);
            return Ok(());
        };
        let (top, sub) = (&name[..bar], &name[bar + 1..]);
        let top_id = ids().lookup(top).ok_or(RuleError::Unknown)?;
        let command = &ids().commands[top_id];
        if command.parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !command.subs.is_empty() {
            let id = ids().lookup(name).ok_or(RuleError::Unknown)?;
            self.change(id, true);
        } else {
            log::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is a \
                 misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            let sub = String::from_utf8_lossy(sub).into_owned();
            let allowed = self.first_args.entry(top_id).or_default();
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&sub)) {
                allowed.push(sub);
            }
        }
        Ok(())
    }

    /// Redis's `ACLSelectorCheckCmd`: whether this selector lets `id` run with `args` (the
    /// command's name first), whose keys are `keys` (position, `READ`/`WRITE` needed) and
    /// channels `channels` (position, whether literal).
    pub(crate) fn check(
        &self,
        id: usize,
        no_auth: bool,
        call: &super::Call<'_>,
    ) -> Result<(), Denied> {
        if !self.all_commands && !no_auth && !self.bit(id) {
            let is_sub = ids().commands[id].parent.is_some();
            let first = call.args.get(if is_sub { 2 } else { 1 });
            let allowed = self.first_args.get(&id).is_some_and(|allowed| {
                first.is_some_and(|f| allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(f)))
            });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys {
            for &(pos, need) in call.keys {
                let key = call.args[pos];
                let ok = self.patterns.iter().any(|(flags, pattern)| {
                    flags & need == need && crate::cmd::keys::glob::matches(pattern, key)
                });
                if !ok {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            for &(pos, literal) in call.channels {
                let channel = call.args[pos];
                let ok = self.channels.iter().any(|pattern| {
                    if literal {
                        pattern == channel
                    } else {
                        crate::cmd::keys::glob::matches(pattern, channel)
                    }
                });
                if !ok {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }
}

/// Redis's `ACLStringHasSpaces`: whitespace or NUL.
pub(crate) fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&b| b == 0 || matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}
