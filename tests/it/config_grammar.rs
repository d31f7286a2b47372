//! Config language grammar: every construct, each error with its line:col,
//! includes and variables. Mapping onto Options is in `config_options.rs`.

use std::path::{Path, PathBuf};

use natrium::config::{parse_value, ConfigError, Map, Value};

fn parse(text: &str) -> Map {
    match parse_value(text, Path::new(".")) {
        Ok(Value::Map(m)) => m,
        Ok(other) => panic!("not a map: {other:?}"),
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse_value(text, Path::new(".")) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn get<'a>(m: &'a Map, key: &str) -> &'a Value {
    match m.get(key) {
        Some(e) => &e.node.value,
        None => panic!("missing key {key}"),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

#[test]
fn three_assignment_styles_and_separators() {
    let m = parse("a = 1\nb: 2\nc 3; d=4, e:5\n");
    for (k, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)] {
        assert_eq!(get(&m, k), &Value::Integer(n), "{k}");
    }
}

#[test]
fn unquoted_strings_with_colons_and_dots() {
    let m = parse("listen: 127.0.0.1:4222\nhost: 0.0.0.0\nurl = nats://h:4222/x\nname foo-bar");
    assert_eq!(get(&m, "listen"), &s("127.0.0.1:4222"));
    assert_eq!(get(&m, "host"), &s("0.0.0.0"));
    assert_eq!(get(&m, "url"), &s("nats://h:4222/x"));
    assert_eq!(get(&m, "name"), &s("foo-bar"));
}

#[test]
fn quoted_strings_escapes_and_raw() {
    let m = parse(
        r#"a = "x\ty\n\"q\" \u00e9"
b = 'raw\n $NOT'
"quoted key": 1"#,
    );
    assert_eq!(get(&m, "a"), &s("x\ty\n\"q\" é"));
    assert_eq!(get(&m, "b"), &s("raw\\n $NOT"));
    assert_eq!(get(&m, "quoted key"), &Value::Integer(1));
}

#[test]
fn comments_hash_and_slashes() {
    let m = parse("# top\na = 1 # trailing\n// whole line\nb: 2 // trailing\n  # indented\n");
    assert_eq!(m.entries.len(), 2);
    assert_eq!(get(&m, "b"), &Value::Integer(2));
}

#[test]
fn numbers_floats_and_negative() {
    let m = parse("a = -5\nb = 1.5\nc = 0\nd = -0.25");
    assert_eq!(get(&m, "a"), &Value::Integer(-5));
    assert_eq!(get(&m, "b"), &Value::Float(1.5));
    assert_eq!(get(&m, "c"), &Value::Integer(0));
    assert_eq!(get(&m, "d"), &Value::Float(-0.25));
}

#[test]
fn size_units_are_case_insensitive_and_decimal_or_binary() {
    let m = parse("a=1K\nb=1KB\nc=1M\nd=1MB\ne=1G\nf=1GB\ng=2kb\nh=8mb\ni=3g\nj=10Mb");
    let want = [
        ("a", 1_000),
        ("b", 1_024),
        ("c", 1_000_000),
        ("d", 1_048_576),
        ("e", 1_000_000_000),
        ("f", 1_073_741_824),
        ("g", 2_048),
        ("h", 8 * 1_048_576),
        ("i", 3_000_000_000),
        ("j", 10 * 1_048_576),
    ];
    for (k, n) in want {
        assert_eq!(get(&m, k), &Value::Integer(n), "{k}");
    }
}

#[test]
fn booleans_all_spellings() {
    let m = parse("a=true\nb=FALSE\nc=yes\nd=No\ne=on\nf=OFF\ng=\"true\"");
    for (k, b) in [
        ("a", true),
        ("b", false),
        ("c", true),
        ("d", false),
        ("e", true),
        ("f", false),
    ] {
        assert_eq!(get(&m, k), &Value::Bool(b), "{k}");
    }
    assert_eq!(get(&m, "g"), &s("true"), "quoted stays a string");
}

#[test]
fn duration_like_words_stay_strings() {
    let m = parse("a = 2m0s\nb = 10s\nc = \"100ms\"");
    assert_eq!(get(&m, "a"), &s("2m0s"));
    assert_eq!(get(&m, "b"), &s("10s"));
    assert_eq!(get(&m, "c"), &s("100ms"));
}

#[test]
fn nested_maps_with_and_without_separator() {
    let m = parse("outer {\n  inner: { x = 1, y: \"two\" }\n  z 3\n}\nflat = {a: 1}");
    let Value::Map(outer) = get(&m, "outer") else {
        panic!("outer not a map")
    };
    let Value::Map(inner) = get(outer, "inner") else {
        panic!("inner not a map")
    };
    assert_eq!(get(inner, "x"), &Value::Integer(1));
    assert_eq!(get(inner, "y"), &s("two"));
    assert_eq!(get(outer, "z"), &Value::Integer(3));
    let Value::Map(flat) = get(&m, "flat") else {
        panic!("flat not a map")
    };
    assert_eq!(get(flat, "a"), &Value::Integer(1));
}

#[test]
fn arrays_comma_and_newline_separated() {
    let m = parse("a = [1, 2, 3]\nb [\n  \"x\"\n  y,\n  {k: v}\n  [nested]\n]\nc: []\nd = [1,2,]");
    let Value::Array(a) = get(&m, "a") else {
        panic!()
    };
    assert_eq!(a.len(), 3);
    let Value::Array(b) = get(&m, "b") else {
        panic!()
    };
    assert_eq!(b.len(), 4);
    assert_eq!(b[1].value, s("y"));
    assert!(matches!(b[2].value, Value::Map(_)));
    assert!(matches!(b[3].value, Value::Array(_)));
    assert_eq!(get(&m, "c"), &Value::Array(vec![]));
    let Value::Array(d) = get(&m, "d") else {
        panic!()
    };
    assert_eq!(d.len(), 2);
}

#[test]
fn positions_point_at_keys_and_values() {
    let m = parse("\n  port: 4222\n");
    let e = m.get("port").expect("port");
    assert_eq!((e.key_pos.line, e.key_pos.col), (2, 3));
    assert_eq!((e.node.pos.line, e.node.pos.col), (2, 9));
}

#[test]
fn later_key_overrides_earlier() {
    let m = parse("a = 1\na = 2");
    assert_eq!(m.entries.len(), 1);
    assert_eq!(get(&m, "a"), &Value::Integer(2));
}

#[test]
fn error_unclosed_map_points_at_end_and_opening() {
    assert_eq!(
        err("auth = {\n  user: a\n"),
        "3:1: expected '}' to close map opened at 1:8"
    );
}

#[test]
fn error_unclosed_array() {
    assert_eq!(
        err("a = [1, 2"),
        "1:10: expected ']' to close array opened at 1:5"
    );
}

/// Found by the config fuzzer: `[[[[…` thousands deep overflowed the stack
/// of the recursive parser (an abort, also on a reload). 64 levels parse;
/// one more is an error at the opening bracket.
#[test]
fn error_nesting_too_deep() {
    let ok = format!("a = {}1{}", "[".repeat(63), "]".repeat(63));
    assert!(parse_value(&ok, Path::new(".")).is_ok());
    let mixed = format!("a = {}", "{b = [".repeat(40));
    assert_eq!(
        err(&mixed),
        "1:197: maps and arrays nested more than 64 deep"
    );
    let deep = "[".repeat(100_000);
    assert_eq!(
        err(&format!("a = {deep}")),
        "1:69: maps and arrays nested more than 64 deep"
    );
}

#[test]
fn error_missing_value() {
    assert_eq!(
        err("port =\n"),
        "1:7: expected a value for \"port\", found end of line"
    );
}

#[test]
fn error_stray_closing_brace() {
    assert_eq!(err("a = 1\n}"), "2:1: expected a key, found '}'");
}

#[test]
fn error_two_values_on_one_line() {
    assert_eq!(
        err("a = 1 2"),
        "1:7: expected a new line, ',' or ';' after the value, found '2'"
    );
}

#[test]
fn error_unterminated_string() {
    assert_eq!(
        err("a = 1\nb = \"abc\n"),
        "2:5: unterminated string, expected closing \""
    );
}

#[test]
fn error_bad_escape() {
    assert_eq!(
        err("a = \"x\\q\""),
        "1:7: invalid escape sequence '\\q' in string"
    );
}

#[test]
fn error_integer_out_of_range() {
    assert_eq!(
        err("a = 99999999999G"),
        "1:5: integer '99999999999G' is out of range"
    );
}

#[test]
fn variables_from_earlier_keys_and_enclosing_maps() {
    let m =
        parse("TOKEN: \"s3cr3t\"\nsize = 2MB\nauth {\n  token: $TOKEN\n  inner { max: $size }\n}");
    let Value::Map(auth) = get(&m, "auth") else {
        panic!()
    };
    assert_eq!(get(auth, "token"), &s("s3cr3t"));
    let Value::Map(inner) = get(auth, "inner") else {
        panic!()
    };
    assert_eq!(get(inner, "max"), &Value::Integer(2 * 1_048_576));
}

#[test]
fn variables_fall_back_to_environment_typed() {
    std::env::set_var("NATRIUM_CFG_TEST_PORT_7731", "4333");
    std::env::set_var("NATRIUM_CFG_TEST_NAME_7731", "hello world");
    let m = parse("port: $NATRIUM_CFG_TEST_PORT_7731\nname: $NATRIUM_CFG_TEST_NAME_7731");
    assert_eq!(get(&m, "port"), &Value::Integer(4333));
    assert_eq!(get(&m, "name"), &s("hello world"));
}

#[test]
fn variable_defined_file_wins_over_environment() {
    std::env::set_var("NATRIUM_CFG_TEST_SHADOW_7731", "env");
    let m = parse("NATRIUM_CFG_TEST_SHADOW_7731 = file\nv = $NATRIUM_CFG_TEST_SHADOW_7731");
    assert_eq!(get(&m, "v"), &s("file"));
}

#[test]
fn error_unknown_variable() {
    assert_eq!(
        err("a = 1\nb = $NATRIUM_CFG_TEST_SURELY_UNSET_7731"),
        "2:5: unknown variable $NATRIUM_CFG_TEST_SURELY_UNSET_7731 \
         (not defined earlier and not in the environment)"
    );
}

#[test]
fn error_variable_used_before_definition() {
    let e = err("a = $NATRIUM_CFG_LATER_7731\nNATRIUM_CFG_LATER_7731 = 1");
    assert!(e.starts_with("1:5: unknown variable"), "{e}");
}

#[test]
fn error_env_variable_cycle() {
    std::env::set_var("NATRIUM_CFG_TEST_LOOP_7731", "$NATRIUM_CFG_TEST_LOOP_7731");
    let e = err("a = $NATRIUM_CFG_TEST_LOOP_7731");
    assert!(
        e.starts_with("1:5: variable $NATRIUM_CFG_TEST_LOOP_7731 refers to itself"),
        "{e}"
    );
}

#[test]
fn bcrypt_password_is_not_a_variable() {
    let m = parse("pass: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG");
    assert_eq!(
        get(&m, "pass"),
        &s("$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG")
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natrium-cfg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
    dir
}

#[test]
fn include_relative_to_including_file_top_level_and_in_maps() {
    let dir = temp_dir("inc");
    std::fs::write(
        dir.join("main.conf"),
        "port: 1\ninclude \"sub/auth.conf\"\ntls { include sub/tls.conf }\nafter: $user\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("sub/auth.conf"),
        "user: bob\ninclude 'more.conf'\n",
    )
    .expect("write");
    std::fs::write(dir.join("sub/more.conf"), "pass = secret\n").expect("write");
    std::fs::write(dir.join("sub/tls.conf"), "verify: true\n").expect("write");
    let v = natrium::config::read(&dir.join("main.conf")).expect("parse");
    let Value::Map(m) = v else { panic!() };
    assert_eq!(get(&m, "user"), &s("bob"));
    assert_eq!(get(&m, "pass"), &s("secret"));
    assert_eq!(get(&m, "after"), &s("bob"));
    let Value::Map(tls) = get(&m, "tls") else {
        panic!()
    };
    assert_eq!(get(tls, "verify"), &Value::Bool(true));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_errors_name_the_included_file() {
    let dir = temp_dir("incerr");
    std::fs::write(dir.join("main.conf"), "a = 1\ninclude bad.conf\n").expect("write");
    std::fs::write(dir.join("bad.conf"), "x = {\n").expect("write");
    let e = natrium::config::read(&dir.join("main.conf"))
        .err()
        .map(|e| e.to_string());
    let e = e.expect("error");
    assert!(
        e.contains("bad.conf:2:1: expected '}' to close map opened at 1:5"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_missing_file_and_cycle() {
    let dir = temp_dir("cycle");
    std::fs::write(dir.join("a.conf"), "include b.conf\n").expect("write");
    std::fs::write(dir.join("b.conf"), "x = 1\n\ninclude a.conf\n").expect("write");
    let e = natrium::config::read(&dir.join("a.conf"))
        .err()
        .map(|e| e.to_string());
    let e = e.expect("cycle error");
    assert!(e.contains("b.conf:3:1: include cycle"), "{e}");

    let e = parse_value("include nope.conf", &dir).err();
    assert!(
        matches!(&e, Some(ConfigError::Parse(_)))
            && e.as_ref()
                .is_some_and(|e| e.to_string().starts_with("1:1: cannot read include file")),
        "{e:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
