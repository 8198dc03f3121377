//! Compiles our own protocol definitions with protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin5.proto",
        "proto/tfplugin6.proto",
        "proto/plugin.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    // The release link orders the binaries' startup functions by this list (xtask's
    // startup_order.rs): a new list builds the binaries again.
    println!("cargo:rerun-if-changed=startup.order");
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
