ephemeral "oci_identity_auth_token" "registry_login" {
  user_id     = var.user_ocid
  description = "registry login for one terraform run"
}
