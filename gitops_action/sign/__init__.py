"""Signing: cosign sign and verify, keyless signing's OIDC token."""
