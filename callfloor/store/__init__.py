"""Stores: where accepted events become durable and checkpoints are kept (SPEC §9)."""
