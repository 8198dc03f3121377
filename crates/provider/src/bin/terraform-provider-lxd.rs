//! `terraform-provider-lxd`: started by Terraform; `--debug` serves it for a debugger.

fn main() -> std::process::ExitCode {
    provider::main(
        provider::lxd::LxdProvider::default,
        "registry.terraform.io/hashicorp/lxd",
    )
}
