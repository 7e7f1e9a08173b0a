#!/usr/bin/env bash
# `make demo`: the endpoint baseline on this machine, then a collector in ./demo-data served on loopback,
# this machine's agent enrolled and delivering a run, and the compliance summary. Safe to run again: what
# exists in ./demo-data is kept. The collector is stopped when the script ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DATA=${DEMO_DATA:-demo-data}
PORT=${DEMO_PORT:-18443}
URL="https://127.0.0.1:${PORT}"
CONFIG="$DATA/collector.yaml"
SERVER_PID=""

step() { printf '\n== %s\n' "$*"; }

stop_collector() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_collector EXIT

step "The endpoint baseline on this machine (rampart-agent check, no collector needed)"
"$BIN/rampart-agent" check || true

step "A collector in $DATA (rampart-collector init)"
mkdir -p "$DATA"
if [ ! -f "$CONFIG" ]; then
  cat > "$CONFIG" <<YAML
collector:
  data_dir: $PWD/$DATA/collector
  listen_host: 127.0.0.1
  listen_port: $PORT
YAML
fi
"$BIN/rampart-collector" --config "$CONFIG" init --format json > "$DATA/init.json"
CA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$DATA/init.json")
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"] or "")' "$DATA/init.json")
if [ -n "$TOKEN" ]; then
  umask 077
  echo "$TOKEN" > "$DATA/admin-token"
  echo "first admin API token written to $DATA/admin-token"
fi
echo "CA for agents: $CA"

step "Serving on $URL (rampart-collector serve, in the background; log in $DATA/collector.log)"
"$BIN/rampart-collector" --config "$CONFIG" serve >> "$DATA/collector.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS --cacert "$CA" "$URL/readyz" > /dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the collector did not start:"; tail -20 "$DATA/collector.log"; exit 1; }
  sleep 0.2
done
curl -fsS --cacert "$CA" "$URL/readyz"; echo

step "An enrolment token for this machine (rampart-collector enroll-token create)"
"$BIN/rampart-collector" --config "$CONFIG" enroll-token create --expires 1h --note "make demo" --format json \
  > "$DATA/enroll-token.json"
ENROLL_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$DATA/enroll-token.json")

# The agent's step: enrol this machine's agent with the token and deliver one run of its checks.
agent_enrol_and_deliver() {
  if ! "$BIN/rampart-agent" enroll --help > /dev/null 2>&1; then
    echo "(this build of rampart-agent has no 'enroll' yet: the agent runtime adds this step)"
    return 0
  fi
  mkdir -p "$DATA/agent"
  cat > "$DATA/agent.yaml" <<YAML
agent:
  state_dir: $PWD/$DATA/agent
YAML
  "$BIN/rampart-agent" --config "$DATA/agent.yaml" enroll --collector "$URL" --token "$ENROLL_TOKEN" --ca-cert "$CA"
  "$BIN/rampart-agent" --config "$DATA/agent.yaml" run --once
}
step "This machine's agent enrols and delivers a run"
agent_enrol_and_deliver

step "Compliance summary (rampart-collector summary)"
"$BIN/rampart-collector" --config "$CONFIG" summary
step "Hosts (rampart-collector hosts)"
"$BIN/rampart-collector" --config "$CONFIG" hosts

step "Stopping the collector"
stop_collector
SERVER_PID=""
echo "done. Run it again any time; remove $DATA to start afresh."
