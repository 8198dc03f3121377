terraform import oci_identity_auth_token.test_auth_token "users/{userId}/authTokens/{authTokenId}"
