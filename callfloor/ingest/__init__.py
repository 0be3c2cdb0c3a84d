"""Ingest: turning transport payloads into canonical events (decoding, adapters)."""
