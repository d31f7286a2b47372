//! AFL entry point for the `parser` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::parser(data));
}
