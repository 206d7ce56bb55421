"""The device hot path at scale: one in-memory access model per account and process."""
