"""Figures and files made from store rows: pool health and the calls download.

Pure: knows nothing of AGI, AMI, HTTP or the gateway; the gateway runs it off the event loop.
"""
