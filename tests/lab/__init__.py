"""The real-parts lab: setup scripts, and helpers that run Asterisk, a SIP phone and a test AMI
client for the integration tests."""
