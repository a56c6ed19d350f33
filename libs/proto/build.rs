//! Compiles `proto/` into Rust with a protoc that ships as a crate, so a fresh machine needs nothing installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [root.join("axiom25/matrix/v1/matrix.proto")];
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("axiom25_descriptor.bin"))
        .compile_with_config(prost_config, &files, &[root])?;

    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}
