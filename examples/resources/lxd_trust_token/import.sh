terraform import lxd_trust_token.token1 <operation id>
