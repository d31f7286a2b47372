//! AFL entry point for the `leaf` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::leaf(data));
}
