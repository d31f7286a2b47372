use super::*;
use crate::options::Permissions;

fn connect(f: impl FnOnce(&mut ConnectInfo)) -> ConnectInfo {
    let mut c = ConnectInfo::default();
    f(&mut c);
    c
}

fn user(name: &str, pass: &str) -> UserConfig {
    UserConfig {
        user: Some(name.into()),
        password: Some(pass.into()),
        ..Default::default()
    }
}

#[test]
fn open_server_needs_nothing() {
    let a = Authenticator::from_options(&Options::default()).expect("build");
    assert!(!a.auth_required());
    assert!(!a.needs_nonce());
    assert!(!a.is_expensive());
    let u = a.authenticate(&ConnectInfo::default(), None).expect("open");
    assert!(u.permissions.is_none());
}

#[test]
fn token_mode() {
    let opts = Options {
        token: Some("s3cr3t".into()),
        ..Default::default()
    };
    let a = Authenticator::from_options(&opts).expect("build");
    assert!(a.auth_required());
    let ok = connect(|c| c.auth_token = Some("s3cr3t".into()));
    assert!(a.authenticate(&ok, None).is_ok());
    let bad = connect(|c| c.auth_token = Some("s3cr3x".into()));
    assert_eq!(a.authenticate(&bad, None), Err(AuthError::BadToken));
    assert_eq!(
        a.authenticate(&ConnectInfo::default(), None),
        Err(AuthError::BadToken)
    );
}

#[test]
fn single_user_mode_plain_and_bcrypt() {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    for (stored, expensive) in [("pw".to_string(), false), (hash, true)] {
        let opts = Options {
            username: Some("alice".into()),
            password: Some(stored),
            ..Default::default()
        };
        let a = Authenticator::from_options(&opts).expect("build");
        assert_eq!(a.is_expensive(), expensive);
        let good = connect(|c| {
            c.user = Some("alice".into());
            c.pass = Some("pw".into());
        });
        assert_eq!(a.authenticate(&good, None).expect("ok").name, "alice");
        let bad = connect(|c| {
            c.user = Some("alice".into());
            c.pass = Some("nope".into());
        });
        assert_eq!(a.authenticate(&bad, None), Err(AuthError::BadPassword));
        let who = connect(|c| {
            c.user = Some("bob".into());
            c.pass = Some("pw".into());
        });
        assert_eq!(a.authenticate(&who, None), Err(AuthError::UnknownUser));
        assert_eq!(
            a.authenticate(&ConnectInfo::default(), None),
            Err(AuthError::MissingCredentials)
        );
    }
}

#[test]
fn bcrypt_token_and_all_hash_prefixes() {
    let hash = bcrypt::hash("tok", 4).expect("hash");
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let h = format!("{prefix}{}", &hash[4..]);
        let opts = Options {
            token: Some(h),
            ..Default::default()
        };
        let a = Authenticator::from_options(&opts).expect("build");
        assert!(a.is_expensive());
        let c = connect(|c| c.auth_token = Some("tok".into()));
        assert!(a.authenticate(&c, None).is_ok(), "{prefix}");
    }
}

#[test]
fn users_list_with_permissions_and_no_auth_user() {
    let mut bob = user("bob", "bpw");
    bob.permissions = Some(Permissions {
        publish_allow: Some(vec!["bob.>".into()]),
        ..Default::default()
    });
    let opts = Options {
        users: vec![user("alice", "apw"), bob],
        no_auth_user: Some("bob".into()),
        ..Default::default()
    };
    let a = Authenticator::from_options(&opts).expect("build");
    assert!(a.auth_required());
    assert!(!a.needs_nonce());
    let alice = connect(|c| {
        c.user = Some("alice".into());
        c.pass = Some("apw".into());
    });
    let u = a.authenticate(&alice, None).expect("alice");
    assert_eq!(u.name, "alice");
    assert!(u.permissions.is_none());
    let anon = a
        .authenticate(&ConnectInfo::default(), None)
        .expect("no_auth_user");
    assert_eq!(anon.name, "bob");
    let mut pc = anon.permission_checker();
    assert!(pc.can_publish(b"bob.x"));
    assert!(!pc.can_publish(b"alice.x"));
    // A password without a user is not anonymous.
    let half = connect(|c| c.pass = Some("apw".into()));
    assert_eq!(
        a.authenticate(&half, None),
        Err(AuthError::MissingCredentials)
    );
    let wrong = connect(|c| {
        c.user = Some("alice".into());
        c.pass = Some("bpw".into());
    });
    assert_eq!(a.authenticate(&wrong, None), Err(AuthError::BadPassword));
}

#[test]
fn config_errors() {
    let opts = Options {
        users: vec![user("a", "b")],
        no_auth_user: Some("ghost".into()),
        ..Default::default()
    };
    assert_eq!(
        Authenticator::from_options(&opts).err(),
        Some(AuthError::UnknownNoAuthUser("ghost".into()))
    );
    let opts = Options {
        no_auth_user: Some("x".into()),
        ..Default::default()
    };
    assert!(Authenticator::from_options(&opts).is_err());
    let opts = Options {
        users: vec![UserConfig {
            nkey: Some("UNOTAKEY".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(matches!(
        Authenticator::from_options(&opts),
        Err(AuthError::InvalidConfiguredNkey(_))
    ));
    let opts = Options {
        users: vec![UserConfig::default()],
        ..Default::default()
    };
    assert_eq!(
        Authenticator::from_options(&opts).err(),
        Some(AuthError::UserWithoutName)
    );
}

#[test]
fn nkey_sign_in() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let kp = nkeys::KeyPair::new_user();
    let public = kp.public_key();
    let opts = Options {
        users: vec![UserConfig {
            nkey: Some(public.clone()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let a = Authenticator::from_options(&opts).expect("build");
    assert!(a.needs_nonce());
    assert!(!a.is_expensive());
    let nonce = Authenticator::new_nonce().expect("os random");
    let raw = kp.sign(nonce.as_bytes()).expect("sign");
    for sig in [
        URL_SAFE_NO_PAD.encode(&raw),
        URL_SAFE.encode(&raw),
        STANDARD.encode(&raw),
    ] {
        let c = connect(|c| {
            c.nkey = Some(public.clone());
            c.sig = Some(sig.clone());
        });
        let u = a.authenticate(&c, Some(nonce.as_bytes())).expect("nkey");
        assert_eq!(u.name, public);
        assert_eq!(
            a.authenticate(&c, Some(b"other-nonce")),
            Err(AuthError::BadSignature)
        );
        assert_eq!(a.authenticate(&c, None), Err(AuthError::MissingSignature));
    }
    let garbage = connect(|c| {
        c.nkey = Some(public.clone());
        c.sig = Some("!!not base64!!".into());
    });
    assert_eq!(
        a.authenticate(&garbage, Some(nonce.as_bytes())),
        Err(AuthError::BadSignature)
    );
    let other = nkeys::KeyPair::new_user();
    let stranger = connect(|c| {
        c.nkey = Some(other.public_key());
        c.sig = Some(URL_SAFE_NO_PAD.encode(other.sign(nonce.as_bytes()).expect("sign")));
    });
    assert!(matches!(
        a.authenticate(&stranger, Some(nonce.as_bytes())),
        Err(AuthError::UnknownNkey(_))
    ));
}

#[test]
fn nonces_are_random_base64url() {
    let a = Authenticator::new_nonce().expect("os random");
    let b = Authenticator::new_nonce().expect("os random");
    assert_eq!(a.len(), 15);
    assert_ne!(a, b);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
}

#[test]
fn constant_time_eq_is_eq() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn debug_output_hides_secrets() {
    let opts = Options {
        users: vec![user("alice", "hunter2")],
        ..Default::default()
    };
    let a = Authenticator::from_options(&opts).expect("build");
    assert!(!format!("{a:?}").contains("hunter2"));
}
