//! Generates the gRPC code and the descriptor set (served by reflection) from `proto/`.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so a fresh machine needs no system package.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // Handed to prost-build directly rather than through the PROTOC variable: setting the
    // environment is `unsafe`, which the crate's lints forbid.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("ossgate_descriptor.bin"))
        .bytes(".ossgate.v1")
        // prost's codec, but a request that does not decode is INVALID_ARGUMENT.
        .codec_path("crate::rpc::codec::GatewayCodec")
        .compile_with_config(
            config,
            &[PathBuf::from("proto/ossgate/v1/ossgate.proto")],
            &[PathBuf::from("proto"), include],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
