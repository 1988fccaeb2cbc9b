use super::*;

fn user(rules: &str) -> User {
    let words: Vec<&[u8]> = rules.split(' ').map(str::as_bytes).collect();
    build_user(b"u", &merge_selectors(&words).unwrap(), false).unwrap()
}

#[test]
fn rules_are_described_as_redis_describes_them() {
    let hash = hash_password(b"pw");
    assert_eq!(
        hash,
        "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
    );
    let u = user("on >pw ~k* +get +@string -set +set &ch %R~r*");
    assert_eq!(
        u.describe(),
        format!("on #{hash} ~k* %R~r* resetchannels &ch -@all +@string")
    );
    let u = user("+@all -@dangerous +client|id");
    assert_eq!(u.describe(), "off resetchannels +@all -@dangerous");
    assert_eq!(
        User::default_user(false).describe(),
        "on nopass ~* &* +@all"
    );
    let u = user("on nopass +get +client|id (~x +set)");
    assert_eq!(
        u.describe(),
        "on nopass resetchannels -@all +get +client|id (~x resetchannels -@all +set)"
    );
}

#[test]
fn rule_errors_are_redis_errors() {
    let bad = |r: &str| {
        build_user(b"u", &[r.as_bytes().to_vec()], false)
            .unwrap_err()
            .1
    };
    assert_eq!(bad("+nosuch"), RuleError::Unknown);
    assert_eq!(bad("+@nosuch"), RuleError::Unknown);
    assert_eq!(bad("bogus"), RuleError::Syntax);
    assert_eq!(bad("#abc"), RuleError::BadHash);
    assert_eq!(bad("<nope"), RuleError::NoSuchPassword);
    assert_eq!(bad("+client|list|x"), RuleError::FirstArgOfSubcommand);
    assert_eq!(bad("%X~k"), RuleError::Syntax);
    let mut u = user("~*");
    assert_eq!(u.apply(b"~k", false), Err(RuleError::AfterAllKeys));
    let mut u = user("&*");
    assert_eq!(u.apply(b"&c", false), Err(RuleError::AfterAllChannels));
}

#[test]
fn checks_follow_commands_keys_and_channels() {
    let u = user("on nopass +get +set +publish +psubscribe ~k* %R~r* &ch*");
    let run = |args: &[&str]| {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let spec = crate::table::lookup(args[0]).unwrap();
        check(&u, spec, &args)
    };
    assert_eq!(run(&["get", "k1"]), Ok(()));
    assert_eq!(run(&["get", "r1"]), Ok(()));
    assert_eq!(run(&["set", "r1", "v"]), Err(Denied::Key(1)));
    assert_eq!(run(&["get", "x"]), Err(Denied::Key(1)));
    assert_eq!(run(&["del", "k1"]), Err(Denied::Command));
    assert_eq!(run(&["publish", "chat", "m"]), Ok(()));
    assert_eq!(run(&["publish", "x", "m"]), Err(Denied::Channel(1)));
    // PSUBSCRIBE's patterns must be one of the user's, letter for letter.
    assert_eq!(run(&["psubscribe", "ch*"]), Ok(()));
    assert_eq!(run(&["psubscribe", "cha*"]), Err(Denied::Channel(1)));
    assert!(User::default_user(false).unrestricted());
}

#[test]
fn selectors_merge_across_words() {
    let words: Vec<&[u8]> = vec![b"on", b"(~x", b"+get)", b"(+set)"];
    assert_eq!(
        merge_selectors(&words).unwrap(),
        vec![b"on".to_vec(), b"(~x +get)".to_vec(), b"(+set)".to_vec()]
    );
    assert_eq!(merge_selectors(&[b"(~x" as &[u8]]), Err(0));
}

#[test]
fn any_rules_leave_a_describable_user_and_never_panic() {
    // Words rules are made of, glued at random: every outcome is a user or a rule error, and a
    // user's description rebuilds its bitmap (checked inside `describe` in debug builds).
    let parts: &[&[u8]] = &[
        b"+",
        b"-",
        b"@",
        b"~",
        b"%",
        b"R",
        b"W",
        b"&",
        b"*",
        b"(",
        b")",
        b"|",
        b">",
        b"<",
        b"#",
        b"!",
        b"get",
        b"client",
        b"list",
        b"all",
        b"read",
        b"on",
        b"off",
        b"reset",
        b" ",
        b"",
        b"\"",
        b"nopass",
        b"allkeys",
        b"resetchannels",
        b"clearselectors",
        b"x",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut rules = Vec::new();
        for _ in 0..(next() % 6) {
            let mut rule = Vec::new();
            for _ in 0..(next() % 5) {
                rule.extend_from_slice(parts[(next() % parts.len() as u64) as usize]);
            }
            rules.push(rule);
        }
        if let Ok(u) = build_user(b"u", &rules, next() % 2 == 0) {
            let _ = u.describe();
            let _ = u.selector_fields();
        }
    }
}
