"""Ingest stage: dock → offload session → store → verify (see services.py)."""
