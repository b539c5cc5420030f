#!/bin/sh
# Writes the ctgw manager user's secret and allowed network from the environment, then runs
# Asterisk in the foreground. compose.yaml gives both containers the same CTGW_AMI_SECRET.
set -eu
: "${CTGW_AMI_SECRET:?set CTGW_AMI_SECRET (the gateway gets the same value)}"
: "${CTGW_AMI_PERMIT:?set CTGW_AMI_PERMIT to the network the gateway connects from}"
case "$CTGW_AMI_SECRET$CTGW_AMI_PERMIT" in
  *"
"*) echo "ctgw-asterisk: CTGW_AMI_SECRET and CTGW_AMI_PERMIT must be one line" >&2; exit 2 ;;
esac
printf 'secret = %s\ndeny = 0.0.0.0/0.0.0.0\npermit = %s\n' \
  "$CTGW_AMI_SECRET" "$CTGW_AMI_PERMIT" > /etc/asterisk/manager-ctgw-access.conf
exec "$@"
