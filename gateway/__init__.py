"""The ctgw daemon: HTTP API, FastAGI server, AMI client, CRM store, webhooks and the CLI.

The edge of the system: it wires config and store around `numberpool` and `reports`.
"""
