"""The ctgw daemon: the shell (app factory, CLI, config, logs, metrics) and its rooms `http/`,
`telephony/`, `leasing/` and `store/`, wired around `numberpool` and `reports`."""
