ephemeral "lxd_trust_token" "join" {
  name = "terraform-joiner"
}
