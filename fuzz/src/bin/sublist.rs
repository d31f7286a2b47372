//! AFL entry point for the `sublist` target (body in natrium-fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| natrium_fuzz::sublist(data));
}
