#!/usr/bin/env bash
# `make demo`: the endpoint baseline on this machine, then a collector in ./demo-data served on loopback,
# this machine's agent enrolled and delivering a run, the compliance summary, the audit-committee briefing
# (PDF) and an evidence pack of this collector, verified offline, and the dashboard's URL with how to sign in
# (the password is written to a file, never printed). On a terminal the collector keeps serving until Enter
# is pressed. Each run starts afresh in
# ./demo-data on a free port. The collector is stopped when the script ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DATA=${DEMO_DATA:-demo-data}
PORT=${DEMO_PORT:-$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
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
rm -rf "$DATA" && mkdir -p "$DATA"
cat > "$CONFIG" <<YAML
collector:
  data_dir: $PWD/$DATA/collector
  listen_host: 127.0.0.1
  listen_port: $PORT
agent:
  state_dir: $PWD/$DATA/agent
YAML
"$BIN/rampart-collector" --config "$CONFIG" init --format json > "$DATA/init.json"
CA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$DATA/init.json")
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"] or "")' "$DATA/init.json")
if [ -n "$TOKEN" ]; then
  umask 077
  echo "$TOKEN" > "$DATA/admin-token"
  echo "first admin API token written to $DATA/admin-token"
fi
echo "CA for agents: $CA"

step "A password for the dashboard's local admin (rampart-collector users set-password; kept in $DATA/admin-password)"
( umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(18))' > "$DATA/admin-password" )
"$BIN/rampart-collector" --config "$CONFIG" users set-password admin --password-file "$DATA/admin-password"

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

step "This machine's agent enrols (rampart-agent enroll; the token is read from stdin, never stored)"
echo "$ENROLL_TOKEN" | "$BIN/rampart-agent" --config "$CONFIG" enroll --collector "$URL" --ca-cert "$CA" --token-file -

step "One full agent run, delivered (rampart-agent run --once)"
"$BIN/rampart-agent" --config "$CONFIG" run --once
"$BIN/rampart-agent" --config "$CONFIG" status

step "Compliance summary (rampart-collector summary)"
"$BIN/rampart-collector" --config "$CONFIG" summary
step "Hosts (rampart-collector hosts)"
"$BIN/rampart-collector" --config "$CONFIG" hosts

step "The audit-committee briefing (rampart-collector briefing)"
"$BIN/rampart-collector" --config "$CONFIG" briefing --out "$DATA/briefing.pdf"

step "An evidence pack with the signed agent reports (rampart-collector evidence export)"
"$BIN/rampart-collector" --config "$CONFIG" evidence export --with-reports --out "$DATA/evidence.zip"
FINGERPRINT=$("$BIN/rampart-collector" --config "$CONFIG" evidence key --format json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')

step "The pack verified offline, as an auditor would (rampart-collector evidence verify; no config, no database)"
"$BIN/rampart-collector" evidence verify "$DATA/evidence.zip" --key "$FINGERPRINT"

step "The dashboard"
echo "Open $URL/ and sign in as admin with the password in $DATA/admin-password"
echo "(the certificate is signed by the demo's own CA, $CA: trust it, or accept the browser's warning)."
if [ -t 0 ] && [ -t 1 ]; then
  read -r -p "The collector keeps serving until you press Enter. " _
fi

step "Stopping the collector"
stop_collector
SERVER_PID=""
echo "done. Run it again any time (it starts afresh); everything is in $DATA"
echo "(briefing: $DATA/briefing.pdf, evidence pack: $DATA/evidence.zip)."
