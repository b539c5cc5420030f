"""Aggregations, exports and dashboard data built from call records and sessions.

Knows nothing of AGI, AMI or HTTP.
"""
