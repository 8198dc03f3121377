provider "lxd" {
  generate_client_certificates = true
  accept_remote_certificate    = true

  remote {
    name    = "lxd-server"
    address = "https://10.1.1.8:8443"
    token   = "<trust token>"
    default = true
  }
}
