//! AFL entry point for the `subject` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::subject(data));
}
