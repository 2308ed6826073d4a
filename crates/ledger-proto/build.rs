//! Compiles `proto/ledger/v1` with protox (pure Rust), so no `protoc` is needed to build.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script binary is reused across checkouts that share a target
    // directory, so a path fixed when it was compiled could name another checkout's files.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("ledger/v1/events.proto"),
        root.join("ledger/v1/entries.proto"),
        root.join("ledger/v1/state.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
