data "lxd_trust_tokens" "pending" {
  name = "mytoken"
}

output "pending_token_ids" {
  value = data.lxd_trust_tokens.pending.tokens[*].operation_id
}
