"""The domain core: leasing tracking numbers to visits, attributing calls to them, phone numbers,
and the call record with its state rules. Pure, with an injected clock; imports nothing from
`gateway` or `reports`."""
