//! AFL entry point for the `config` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::config(data));
}
