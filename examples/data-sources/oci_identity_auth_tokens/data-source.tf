data "oci_identity_auth_tokens" "test_auth_tokens" {
	#Required
	user_id = "${oci_identity_user.test_user.id}"
}
