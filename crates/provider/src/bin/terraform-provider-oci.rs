//! `terraform-provider-oci`: started by Terraform; `--debug` serves it for a debugger.

fn main() -> std::process::ExitCode {
    provider::main(
        provider::oci::OciProvider::default,
        "registry.terraform.io/hashicorp/oci",
    )
}
