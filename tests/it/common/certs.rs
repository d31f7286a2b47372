//! Test certificates: a CA and leaves made inside the test with rcgen, written
//! to a per-test temporary directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

pub fn new_ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = p.self_signed(&key).expect("self-sign");
    Ca { cert, key }
}

/// A leaf signed by `ca` for `sans`: (certificate PEM, key PEM).
pub fn leaf(ca: &Ca, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("params");
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &ca.cert, &ca.key).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A per-test temporary directory, removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new() -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "natrium-certs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).expect("mkdir");
        Dir(d)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
