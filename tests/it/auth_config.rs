//! From a NATS config file to authentication and permission decisions, through
//! the public API only: `config::parse_str` → `Authenticator::from_options` →
//! `authenticate` → `AuthedUser::permission_checker`.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use natrium::auth::{publish_violation, subscribe_violation, AuthError, Authenticator};
use natrium::protocol::connect::ConnectInfo;

fn authenticator(conf: &str) -> Authenticator {
    let (opts, warnings) = natrium::config::parse_str(conf, Path::new(".")).expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    Authenticator::from_options(&opts).expect("authenticator")
}

fn login(
    a: &Authenticator,
    json: &str,
) -> Result<std::sync::Arc<natrium::auth::AuthedUser>, AuthError> {
    let c = ConnectInfo::parse(json.as_bytes()).expect("connect json");
    a.authenticate(&c, None)
}

#[test]
fn auth_users_with_permissions_from_config() {
    let a = authenticator(
        r#"
        authorization {
          users = [
            { user: alice, password: apw, permissions: {
                publish: { allow: ["orders.>"], deny: ["orders.secret"] }
                subscribe: ["updates.*", "work.> workers"]
            } }
            { user: bob, password: bpw }
          ]
        }
        "#,
    );
    assert!(a.auth_required());
    let alice = login(&a, r#"{"user":"alice","pass":"apw"}"#).expect("alice");
    let mut pc = alice.permission_checker();
    assert!(pc.is_restricted());
    assert!(pc.can_publish(b"orders.new"));
    assert!(!pc.can_publish(b"orders.secret"));
    assert!(!pc.can_publish(b"updates.x"));
    assert!(pc.can_subscribe(b"updates.x", None));
    assert!(pc.can_subscribe(b"updates.*", None));
    assert!(!pc.can_subscribe(b"updates.>", None));
    assert!(pc.can_subscribe(b"work.a", Some(b"workers")));
    assert!(!pc.can_subscribe(b"work.a", Some(b"thieves")));
    assert!(!pc.can_subscribe(b"work.a", None));

    let bob = login(&a, r#"{"user":"bob","pass":"bpw"}"#).expect("bob");
    assert!(!bob.permission_checker().is_restricted());
    assert_eq!(
        login(&a, r#"{"user":"bob","pass":"apw"}"#),
        Err(AuthError::BadPassword)
    );
    assert_eq!(login(&a, "{}"), Err(AuthError::MissingCredentials));
}

#[test]
fn auth_default_permissions_and_no_auth_user() {
    let a = authenticator(
        r#"
        no_auth_user: guest
        authorization {
          permissions: { publish: "public.>", subscribe: "public.>" }
          users = [ { user: guest, password: "" }, { user: admin, password: x,
                      permissions: { publish: ">", subscribe: ">" } } ]
        }
        "#,
    );
    let guest = login(&a, "{}").expect("no_auth_user");
    assert_eq!(guest.name, "guest");
    let mut pc = guest.permission_checker();
    assert!(pc.can_publish(b"public.news"));
    assert!(!pc.can_publish(b"private.news"));
    let admin = login(&a, r#"{"user":"admin","pass":"x"}"#).expect("admin");
    assert!(admin.permission_checker().can_publish(b"private.news"));
}

#[test]
fn auth_token_and_single_user_from_config() {
    let a = authenticator("authorization { token: t0k }");
    assert!(login(&a, r#"{"auth_token":"t0k"}"#).is_ok());
    assert_eq!(
        login(&a, r#"{"auth_token":"nope"}"#),
        Err(AuthError::BadToken)
    );

    let hash = bcrypt::hash("pw", 4).expect("hash");
    let a = authenticator(&format!(
        "authorization {{ user: u, password: \"{hash}\" }}"
    ));
    assert!(a.is_expensive(), "bcrypt must be run off the reactor");
    assert_eq!(
        login(&a, r#"{"user":"u","pass":"pw"}"#).expect("u").name,
        "u"
    );
    assert_eq!(
        login(&a, r#"{"user":"u","pass":"px"}"#),
        Err(AuthError::BadPassword)
    );
}

#[test]
fn auth_nkey_user_from_config_signs_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let a = authenticator(&format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}",
        kp.public_key()
    ));
    assert!(a.needs_nonce());
    let nonce = Authenticator::new_nonce().expect("os random");
    let sig = URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).expect("sign"));
    let json = format!(r#"{{"nkey":"{}","sig":"{sig}"}}"#, kp.public_key());
    let c = ConnectInfo::parse(json.as_bytes()).expect("json");
    let u = a.authenticate(&c, Some(nonce.as_bytes())).expect("nkey");
    assert_eq!(u.name, kp.public_key());
    let other_nonce = Authenticator::new_nonce().expect("os random");
    assert_eq!(
        a.authenticate(&c, Some(other_nonce.as_bytes())),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn auth_allow_responses_from_config() {
    let a = authenticator(
        r#"
        authorization { users = [ { user: svc, password: p,
          permissions: { subscribe: "svc.>", allow_responses: true } } ] }
        "#,
    );
    let svc = login(&a, r#"{"user":"svc","pass":"p"}"#).expect("svc");
    let mut pc = svc.permission_checker();
    assert!(pc.can_subscribe(b"svc.echo", None));
    assert!(!pc.can_publish(b"_INBOX.1"));
    pc.note_reply_subject(b"_INBOX.1");
    assert!(pc.can_publish(b"_INBOX.1"));
    assert!(!pc.can_publish(b"_INBOX.1"));
}

#[test]
fn auth_invalid_permission_subject_is_rejected() {
    let (opts, _) = natrium::config::parse_str(
        r#"authorization { users = [ { user: a, password: b, permissions: { publish: "foo..bar" } } ] }"#,
        Path::new("."),
    )
    .expect("config parses; subjects are checked by auth");
    assert_eq!(
        Authenticator::from_options(&opts).err(),
        Some(AuthError::InvalidPermissionSubject("foo..bar".into()))
    );
}

#[test]
fn auth_violation_texts() {
    assert_eq!(
        publish_violation(b"a.b"),
        "Permissions Violation for Publish to \"a.b\""
    );
    assert_eq!(
        subscribe_violation(b"a.*", Some(b"q")),
        "Permissions Violation for Subscription to \"a.*\" using queue \"q\""
    );
}
