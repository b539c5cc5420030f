"""Outbound delivery: webhooks from the store's outbox and conversions sent to ad platforms."""
