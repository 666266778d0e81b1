#!/usr/bin/env bash
# Enforces DESIGN.md section 2: a crate depends only on crates in lower layers, and the L1 cores
# (synchronous, sans-IO) never pull in an async runtime or RPC stack, even transitively.
set -euo pipefail
cd "$(dirname "$0")/.."

# crate -> layer. Crates not yet in the workspace are skipped.
declare -A LAYER=(
  [odradek-common]=0
  [odradek-log]=1 [odradek-metadata]=1 [odradek-replication]=1 [odradek-coordinator]=1
  [odradek-quorum]=2 [odradek-controller]=2 [odradek-frontend]=2 [odradek-client]=2
  [odradek-server]=3 [odradek-sim]=3
)
# Sideways edges within one layer that the design allows, each with its reason:
# - the controller is built on the quorum's replicated log (as Kafka's controller on its raft);
# - a partition replica owns its partition's log (as Kafka's Partition its UnifiedLog).
ALLOWED_SIDEWAYS=" odradek-controller>odradek-quorum odradek-replication>odradek-log "
# External crates an L0/L1 crate must never reach.
ASYNC_CRATES='^(tokio|tonic|hyper|async-std|futures-executor|mio) '

members=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
status=0
for crate in $members; do
  layer=${LAYER[$crate]:-}
  [ -n "$layer" ] || continue
  deps=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1" "$2}' | sort -u)
  for dep in $(echo "$deps" | awk '{print $1}' | grep '^odradek-' | grep -vx "$crate" || true); do
    dep_layer=${LAYER[$dep]:-}
    if [ "$dep_layer" = "$layer" ] && [[ "$ALLOWED_SIDEWAYS" == *" $crate>$dep "* ]]; then
      continue
    fi
    if [ -z "$dep_layer" ] || [ "$dep_layer" -ge "$layer" ]; then
      echo "layering: $crate (L$layer) must not depend on $dep (L${dep_layer:-?})"
      status=1
    fi
  done
  if [ "$layer" -le 1 ]; then
    bad=$(echo "$deps" | grep -E "$ASYNC_CRATES" || true)
    if [ -n "$bad" ]; then
      echo "layering: $crate (L$layer) must stay synchronous but depends on: $bad"
      status=1
    fi
  fi
done
[ "$status" -eq 0 ] && echo "layering: ok"
exit "$status"
