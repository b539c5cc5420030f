"""Asterisk's side: the FastAGI route server and the route decision, the AMI client, the calls it
follows into the store, and the checks of Asterisk's own config."""
