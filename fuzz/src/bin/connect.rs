//! AFL entry point for the `connect` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::connect(data));
}
