"""Tests against a real Asterisk 22 (marker `asterisk`): calls placed over AMI, routed by the
FastAGI server, answered by a real SIP phone. The lab is built by tests/lab/setup.sh."""
