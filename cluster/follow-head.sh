#!/usr/bin/env bash
# Run by cluster-local.yaml on every worker after `ray start`: `ray down` stops Ray on the head only (Ray's local
# provider leaves the workers' machines alone, and a worker's Ray outlives its head: the raylet gives up on it
# after a minute, its agents later, its log monitor never). This stops the worker's Ray once the head's GCS port
# has refused connections at 3 checks in a row, 5 s apart, and ends by itself when Ray no longer runs here.
#
#   setsid nohup bash ~/mmray/cluster/follow-head.sh HEAD_IP:PORT >/dev/null 2>&1 < /dev/null &
set -u
head="${1%:*}" port="${1##*:}" misses=0
while sleep 5; do
  pgrep -u "$(id -u)" -x raylet >/dev/null || exit 0  # this node's Ray has stopped (ray stop, a restart)
  if (exec 3<>"/dev/tcp/$head/$port") 2>/dev/null; then misses=0; else misses=$((misses + 1)); fi
  if [ "$misses" -ge 3 ]; then exec ray stop; fi
done
