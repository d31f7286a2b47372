//! Replays every committed corpus and crash file (`fuzz/corpus/TARGET/*`,
//! `fuzz/crashes/TARGET/*`) through its target, so a regression the fuzzer
//! once found fails `cargo test` without a fuzzer installed.

use std::path::Path;

#[test]
fn every_corpus_and_crash_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut total = 0;
    for (name, target) in natrium_fuzz::TARGETS {
        let mut seen = 0;
        for dir in ["corpus", "crashes"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_file() || path.extension().is_some_and(|e| e == "md") {
                    continue;
                }
                let data = std::fs::read(&path).expect("read corpus file");
                let run = std::panic::catch_unwind(|| target(&data));
                assert!(run.is_ok(), "{name}: {} fails its target", path.display());
                seen += 1;
            }
        }
        assert!(seen > 0, "target {name} has no committed corpus");
        total += seen;
    }
    eprintln!("replayed {total} corpus and crash files");
}
