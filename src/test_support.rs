//! Helpers for unit tests that read the real GDELT files in `../shared/gdelt`.

use std::path::PathBuf;

/// The shared GDELT folder, or `None` (with the reason printed) when it is absent.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GDELT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // Cargo sets the variable when it runs tests: the checkout being tested, even when a
            // shared target directory holds a binary built from another checkout.
            let root = std::env::var_os("CARGO_MANIFEST_DIR")
                .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
            root.join("../shared/gdelt")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: real GDELT files not found at {} (set GDELT_SHARED_DIR)",
            dir.display()
        );
        None
    }
}

/// A file under the shared GDELT folder, as text.
pub fn shared_file(relative: &str) -> Option<String> {
    let path = shared_dir()?.join(relative);
    Some(
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
}
