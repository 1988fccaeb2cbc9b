//! An ACL user (Redis 7.0's `user`): on or off, its passwords (SHA-256 hex), and its root
//! selector followed by any `(...)` selectors. Rules are applied one at a time as Redis's
//! `ACLSetUser` applies them.

use super::selector::{Selector, has_spaces};
use super::{Call, Denied, RuleError};

/// One user, immutable once published (changes publish a new one: see [`super::Acl`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name.
    pub name: Vec<u8>,
    /// `on` (else `off`: no one can authenticate as it).
    pub enabled: bool,
    /// `nopass`: any password authenticates.
    pub nopass: bool,
    /// `skip-sanitize-payload` / `sanitize-payload`, when one was given (Redis shows it).
    pub sanitize: Option<bool>,
    /// SHA-256 hex digests of the passwords, in the order added.
    pub passwords: Vec<String>,
    /// The root selector, then the `(...)` ones.
    pub(crate) selectors: Vec<Selector>,
}

/// Redis's `ACLHashPassword`: lowercase hex SHA-256.
pub fn hash_password(password: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(password)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no password, no permissions.
    pub(crate) fn new(name: &[u8], all_channels: bool) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(all_channels)],
        }
    }

    /// Redis's default user: `on nopass ~* &* +@all`.
    pub(crate) fn default_user(all_channels: bool) -> User {
        let mut u = User::new(b"default", all_channels);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            u.apply(op.as_bytes(), all_channels)
                .expect("the default user's rules are valid");
        }
        u
    }

    /// The root selector.
    pub(crate) fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// Whether the user may run anything on anything (checks can be skipped).
    pub fn unrestricted(&self) -> bool {
        self.root().unrestricted()
    }

    /// Applies one rule (`ACLSetUser`); `all_channels` is `acl-pubsub-default`.
    pub(crate) fn apply(&mut self, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = match op[0] {
                b'>' => hash_password(&op[1..]),
                _ => valid_hash(&op[1..])?,
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = match op[0] {
                b'<' => hash_password(&op[1..]),
                _ => valid_hash(&op[1..])?,
            };
            let i = self
                .passwords
                .iter()
                .position(|p| *p == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(i);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut selector = Selector::new(all_channels);
            let inner = &op[1..op.len() - 1];
            let words = crate::resp::parser::split_words(inner).ok_or(RuleError::Syntax)?;
            for word in words {
                selector.apply(&word)?;
            }
            self.selectors.push(selector);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for op in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(op.as_bytes(), all_channels)?;
            }
            if all_channels {
                self.apply(b"allchannels", all_channels)?;
            }
            for op in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(op.as_bytes(), all_channels)?;
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Whether `password` authenticates this user (`ACLCheckUserCredentials`, past the name).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        // Every stored hash is compared in full: the time says nothing of which one is close.
        self.passwords.iter().fold(false, |ok, p| {
            constant_time_eq(p.as_bytes(), hash.as_bytes()) | ok
        })
    }

    /// Redis's `ACLCheckAllUserCommandPerm`: allowed when a selector allows it; else the most
    /// telling denial (channel over key over command, then the latest argument).
    pub(crate) fn check(&self, id: usize, no_auth: bool, call: &Call<'_>) -> Result<(), Denied> {
        let mut worst: Option<Denied> = None;
        for selector in &self.selectors {
            match selector.check(id, no_auth, call) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if worst.is_none_or(|w| d.rank() > w.rank()) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or(Denied::Command))
    }

    /// The rules after the name, as ACL LIST and ACL files write them (`ACLDescribeUser`).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for flag in self.flags() {
            out.push_str(flag);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        for (i, selector) in self.selectors.iter().enumerate() {
            let text = super::describe::selector(selector);
            if i == 0 {
                out.push_str(&text);
            } else {
                out.push_str(&format!(" ({text})"));
            }
        }
        out
    }

    /// GETUSER's `commands`, `keys` and `channels` of each selector, the root's first.
    pub fn selector_fields(&self) -> Vec<Vec<(&'static str, String)>> {
        self.selectors
            .iter()
            .map(|s| {
                vec![
                    ("commands", super::describe::command_rules(s)),
                    ("keys", super::describe::keys(s)),
                    ("channels", super::describe::channels(s)),
                ]
            })
            .collect()
    }

    /// GETUSER's `flags`, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Some(false) => flags.push("skip-sanitize-payload"),
            Some(true) => flags.push("sanitize-payload"),
            None => {}
        }
        flags
    }
}

/// `#hash` / `!hash`: 64 lowercase hex characters.
fn valid_hash(hash: &[u8]) -> Result<String, RuleError> {
    if hash.len() != 64 || !hash.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(hash).into_owned())
}

/// Compares without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Whether a user name is acceptable (no spaces or NUL).
pub fn valid_name(name: &[u8]) -> bool {
    !has_spaces(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_fully() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
        let mut u = User::new(b"u", false);
        u.apply(b">pw", false).unwrap();
        assert!(!u.password_ok(b"pw"), "off users never authenticate");
        u.apply(b"on", false).unwrap();
        assert!(u.password_ok(b"pw") && !u.password_ok(b"pW"));
    }
}
