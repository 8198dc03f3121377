terraform import oci_identity_user.test_user "id"
