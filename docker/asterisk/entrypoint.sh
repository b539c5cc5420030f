#!/bin/sh
# Writes, from the environment, the ctgw manager user's secret and allowed network and the
# gateways the dialplan asks (CTGW_AGI_HOST, default "gateway", and CTGW_AGI_HOST2, empty: one
# gateway), then runs Asterisk in the foreground. compose.yaml gives both containers the same
# CTGW_AMI_SECRET; compose.cluster.yaml also names two gateways.
set -eu
: "${CTGW_AMI_SECRET:?set CTGW_AMI_SECRET (the gateway gets the same value)}"
: "${CTGW_AMI_PERMIT:?set CTGW_AMI_PERMIT to the network the gateway connects from}"
agi_host="${CTGW_AGI_HOST:-gateway}"
agi_host2="${CTGW_AGI_HOST2:-}"
case "$CTGW_AMI_SECRET$CTGW_AMI_PERMIT" in
  *"
"*) echo "ctgw-asterisk: CTGW_AMI_SECRET and CTGW_AMI_PERMIT must be one line" >&2; exit 2 ;;
esac
# Host names or addresses only: the values land in the dialplan.
for host in "$agi_host" "$agi_host2"; do
  case "$host" in
    *[!A-Za-z0-9.:-]*) echo "ctgw-asterisk: CTGW_AGI_HOST(2) must be a host name" >&2; exit 2 ;;
  esac
done
printf 'secret = %s\ndeny = 0.0.0.0/0.0.0.0\npermit = %s\n' \
  "$CTGW_AMI_SECRET" "$CTGW_AMI_PERMIT" > /etc/asterisk/manager-ctgw-access.conf
# Included by extensions.conf after ctgw-globals.conf: these lines win over its.
printf '; Written at start by ctgw-asterisk from the environment.\nCTGW_AGI_HOST=%s\nCTGW_AGI_HOST2=%s\n' \
  "$agi_host" "$agi_host2" > /etc/asterisk/ctgw-agi-hosts.conf
exec "$@"
