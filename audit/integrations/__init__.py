"""External programs and keys the custody log relies on: the Ed25519 signing key, the RFC 3161
time-stamping authority (through the ``openssl`` command line)."""
