"""Leasing tracking numbers to visits and attributing calls to them.

The domain core: pure rules with an injected clock; imports nothing from `gateway` or `reports`.
"""
