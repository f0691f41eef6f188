#!/usr/bin/env bash
# Seed 001 (App Mesh's mutual TLS reference: migrating services communicating over plaintext) by hand, against a
# running `keymesh server`, with the AWS CLI and curl, under continuous traffic: what `keymesh demo migrate` does
# in one process, one command at a time. See examples/seed001/README.md.
#
#   ./examples/seed001/steps.sh certs      # keymesh certs: the CA; the server's, the client's and an untrusted name's files
#   ./examples/seed001/steps.sh up         # the mesh in plaintext: my-backend-node (backend.my-mesh.local), my-client-node
#   ./examples/seed001/steps.sh start      # the server's application and both sidecars (keymesh proxy), in the background
#   ./examples/seed001/steps.sh traffic    # the client's application: a bounded stream of requests, in the background
#   ./examples/seed001/steps.sh check      # the requests sent and failed so far, plaintext connections, the TLS stats
#   ./examples/seed001/steps.sh 1          # .. 5: the seed's steps (3 only looks), each checked, then `check`
#   ./examples/seed001/steps.sh stop       # stop the traffic (its final count), the proxies and the application
#   ./examples/seed001/steps.sh down       # delete the mesh's resources
#   ./examples/seed001/steps.sh all        # certs up start traffic 1 2 3 4 5 stop down; fails if any request failed
#
# Several commands may be given at once: `steps.sh certs up start traffic`. A step that does not show what the
# seed says within 20 s stops the script with the reason (exit 1).
#
# The JSON files next to this script are the calls' --cli-input-json. They say /keys/ for the certificate
# directory, as the seed walkthroughs do; this script sends them with /keys/ replaced by $KEYS_DIR/.
#
# Environment (defaults in brackets): KEYMESH_ENDPOINT [http://127.0.0.1:7000], KEYMESH_XDS [127.0.0.1:7444],
# KEYMESH_IDENTITY_ENDPOINT [https://127.0.0.1:7443] (keymesh server's defaults); WORK_DIR
# [${TMPDIR:-/tmp}/keymesh-seed001]: tokens, logs, pids, the traffic's log; KEYS_DIR [$WORK_DIR/keys]; SERVER_IP
# [127.0.0.21], CLIENT_IP [127.0.0.22]: the two workloads' loopback addresses (each sidecar's admin interface on
# its own address, port 9901); RATE [50]: requests per second; MAX_REQUESTS [30000]: the traffic's bound (it also
# stops after 10 minutes). The AWS CLI needs the credentials keymesh server printed (export AWS_ACCESS_KEY_ID=...
# AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1).
set -euo pipefail
# HERE, REPO, KEYMESH, ENDPOINT, XDS, IDENTITY, WORK and the helpers (say, run, die, need, start_proxy, ...).
. "$(dirname "$0")/../lib/steps-common.sh"

KEYS="${KEYS_DIR:-$WORK/keys}"
SERVER_IP="${SERVER_IP:-127.0.0.21}"
CLIENT_IP="${CLIENT_IP:-127.0.0.22}"
SERVER_ADMIN="$SERVER_IP:9901"
CLIENT_ADMIN="$CLIENT_IP:9901"
RATE="${RATE:-50}"
MAX_REQUESTS="${MAX_REQUESTS:-30000}"

MESH=my-mesh
SERVER=my-backend-node
CLIENT=my-client-node
SERVICE=backend.my-mesh.local
ANSWER="hello from $SERVER"
LISTENER="listener.${SERVER_IP}_15000"
CLUSTER="cluster.cds_egress_${MESH}_${SERVER}_http_9080"

# aws appmesh OPERATION FILE: the call with the file's input, /keys/ pointing at $KEYS.
appmesh() {
  need_aws
  appmesh_send "$1" "$2" "$(sed "s|/keys/|$KEYS/|g" "$HERE/$2")" "   (/keys/ = $KEYS/)"
}

# stat_of ADMIN NAME: a counter or gauge of a sidecar's /stats, 0 when it has not been emitted.
stat_of() {
  curl -s "http://$1/stats?usedonly" | awk -F': ' -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# until_true DESCRIPTION COMMAND...: the command, every 0.2 s for up to 20 s, until it succeeds.
until_true() {
  local what="$1" i
  shift
  for i in $(seq 1 100); do
    "$@" && return 0
    sleep 0.2
  done
  die "after 20 s, still not: $what (not as the seed says)"
}

certs() {
  say "certificates in $KEYS"
  certs_once backend="$SERVICE" client=client.my-mesh.local other=other.my-mesh.local
}

up() {
  say "the mesh, in plaintext"
  appmesh create-mesh mesh.json
  appmesh create-virtual-node backend-vn.json
  appmesh create-virtual-service backend-vs.json
  appmesh create-virtual-node client-vn.json
}

answers() {
  [[ "$(curl -s -m 5 -H "Host: $SERVICE:9080" "http://$CLIENT_IP:15001/")" == "$ANSWER" ]]
}

start() {
  need curl "to send the traffic and read the stats: apt-get install -y curl"
  say "$SERVER's application on $SERVER_IP:9080 and its sidecar on $SERVER_IP:15000; $CLIENT's sidecar on $CLIENT_IP:15001 (logs in $WORK)"
  mkdir -p "$WORK"
  node -e 'require("node:http").createServer((q, s) => s.end(q.url === "/ping" ? "pong" : process.argv[2])).listen(9080, process.argv[1])' \
    "$SERVER_IP" "$ANSWER" > "$WORK/backend-app.log" 2>&1 &
  echo $! > "$WORK/backend-app.pid"
  start_proxy proxy "$SERVER" "$SERVER_IP" "$SERVER_ADMIN"
  wait_ready "$SERVER" "$SERVER_ADMIN"
  start_proxy proxy "$CLIENT" "$CLIENT_IP" "$CLIENT_ADMIN"
  wait_ready "$CLIENT" "$CLIENT_ADMIN"
  until_true "a request through $CLIENT's sidecar answers \"$ANSWER\"" answers
  echo "curl -H 'Host: $SERVICE:9080' http://$CLIENT_IP:15001/ -> $ANSWER"
}

# The client's application: one curl on one keep-alive connection, RATE requests/s, MAX_REQUESTS at most (its URL
# range) and 10 minutes at most (timeout passes a stop on to curl); each answer's status on a line of traffic.log
# (000: no answer).
traffic() {
  say "$CLIENT's application: $RATE requests/s through its sidecar, in the background (at most $MAX_REQUESTS, 10 minutes)"
  : > "$WORK/traffic.log"
  # The statuses go to stderr, which curl does not buffer (-s keeps its own messages off it).
  timeout 600 curl -s --rate "$RATE/s" --max-time 5 -o /dev/null -w '%{stderr}%{http_code}\n' -H "Host: $SERVICE:9080" \
    "http://$CLIENT_IP:15001/?n=[1-$MAX_REQUESTS]" 2>> "$WORK/traffic.log" > /dev/null &
  echo $! > "$WORK/traffic.pid"
  until_true "the traffic is flowing" sent_at_least 20
}

sent() { [[ -f "$WORK/traffic.log" ]] && wc -l < "$WORK/traffic.log" | tr -d ' ' || echo 0; }
failed() { [[ -f "$WORK/traffic.log" ]] && { grep -cv '^200$' "$WORK/traffic.log" || true; } || echo 0; }
sent_at_least() { (( $(sent) >= $1 )); }

# check: the requests so far, then the stats the seed names, as curl | grep shows them.
check() {
  printf 'traffic: %s requests sent, %s failed\n' "$(sent)" "$(failed)"
  printf "+ curl -s '%s/stats?usedonly' | grep -E 'ssl\\.(handshake|no_certificate|fail_verify)|plaintext_cx'   # %s\n" "$SERVER_ADMIN" "$SERVER"
  curl -s "http://$SERVER_ADMIN/stats?usedonly" | grep -E "_15000\.(ssl\.(handshake|no_certificate|fail_verify)|keymesh\.plaintext_cx)" || echo '(no output)'
  printf "+ curl -s '%s/stats?usedonly' | grep -E 'cds_egress.*(ssl\\.(handshake|fail_verify)|upstream_rq_retry)'   # %s\n" "$CLIENT_ADMIN" "$CLIENT"
  curl -s "http://$CLIENT_ADMIN/stats?usedonly" | grep -E "cds_egress_${MESH}_${SERVER}_http_9080\.(ssl\.(handshake|fail_verify)|upstream_rq_retry)" || echo '(no output)'
  (( $(failed) == 0 )) || { grep -v '^200$' "$WORK/traffic.log" | sort | uniq -c; die "requests failed (not as the seed says)"; }
}

# What the steps wait for.
client_tls_only() { (( $(stat_of "$CLIENT_ADMIN" "$CLUSTER.ssl.handshake") > 0 && $(stat_of "$SERVER_ADMIN" "$LISTENER.keymesh.plaintext_cx_active") == 0 )); }
handshakes_above() { (( $(stat_of "$SERVER_ADMIN" "$LISTENER.ssl.handshake") > $1 )); }
with_certificate() { echo $(( $(stat_of "$SERVER_ADMIN" "$LISTENER.ssl.handshake") - $(stat_of "$SERVER_ADMIN" "$LISTENER.ssl.no_certificate") )); }
with_certificate_above() { (( $(with_certificate) > $1 )); }
plaintext_refused() { ! curl -s -m 5 -o /dev/null "http://$SERVER_IP:15000/"; }

# mtls_curl [CERT_NAME]: a request straight to the server's ingress over TLS, as CERT_NAME (none: no certificate).
mtls_curl() {
  local args=(-s -m 5 --cacert "$KEYS/ca_cert.pem" --resolve "$SERVICE:15000:$SERVER_IP")
  [[ -n "${1:-}" ]] && args+=(--cert "$KEYS/${1}_cert_chain.pem" --key "$KEYS/${1}_key.pem")
  printf '+ curl --cacert ca_cert.pem%s https://%s:15000/\n' "${1:+ --cert ${1}_cert_chain.pem --key ${1}_key.pem}" "$SERVICE" >&2
  curl "${args[@]}" "https://$SERVICE:15000/"
}

step() {
  local before
  case "$1" in
    1) say "step 1: PERMISSIVE on the server, with its certificate. Without a client policy the client follows the server into TLS (no certificate): plaintext connections go to 0"
       appmesh update-virtual-node step1-backend-vn-permissive.json
       until_true "$CLIENT speaks TLS and no plaintext connection is open" client_tls_only ;;
    2) say "step 2: mutual TLS on the server (trust, SAN client.my-mesh.local), still PERMISSIVE: the client's drained connections come back over TLS without a certificate, accepted"
       before="$(stat_of "$SERVER_ADMIN" "$LISTENER.ssl.handshake")"
       appmesh update-virtual-node step2-backend-vn-mtls.json
       until_true "new TLS handshakes at $SERVER" handshakes_above "$before" ;;
    3) say "step 3: confirm TLS: no plaintext connection open; the server's certificate checks out as $SERVICE and takes the client's, refuses another name's"
       (( $(stat_of "$SERVER_ADMIN" "$LISTENER.keymesh.plaintext_cx_active") == 0 )) || die "plaintext connections are still open"
       [[ "$(mtls_curl client)" == "$ANSWER" ]] && echo "$ANSWER" || die "mutual TLS as client.my-mesh.local is not served"
       if mtls_curl other > /dev/null; then die "a certificate for other.my-mesh.local was served"; else echo "(refused: ssl.fail_verify_san)"; fi
       printf '+ curl http://%s:15000/   # plaintext still gets in under PERMISSIVE\n' "$SERVER_IP"
       curl -s -m 5 "http://$SERVER_IP:15000/"; echo ;;
    4) say "step 4: mutual TLS on the client (certificate, trust, SAN $SERVICE): TLS handshakes rise, ssl.no_certificate no longer does"
       before="$(with_certificate)"
       appmesh update-virtual-node step4-client-vn-mtls.json
       until_true "TLS handshakes with a client certificate at $SERVER" with_certificate_above "$before" ;;
    5) say "step 5: STRICT on the server: plaintext and TLS without a certificate are refused; the client's traffic goes on"
       appmesh update-virtual-node step5-backend-vn-strict.json
       until_true "plaintext refused by $SERVER" plaintext_refused
       echo "+ curl http://$SERVER_IP:15000/ -> no answer"
       if mtls_curl > /dev/null; then die "TLS without a client certificate was served"; else echo "(refused: ssl.fail_verify_no_cert)"; fi ;;
  esac
  check
}

stop() {
  say "stopping the traffic, the proxies and the application"
  if [[ -f "$WORK/traffic.pid" ]]; then
    kill "$(cat "$WORK/traffic.pid")" 2>/dev/null || true
    rm -f "$WORK/traffic.pid"
    printf 'traffic: %s requests sent, %s failed\n' "$(sent)" "$(failed)"
  fi
  stop_pids "$CLIENT" "$SERVER" backend-app
}

down() {
  say "deleting the mesh's resources"
  appmesh_delete virtual-node --virtual-node-name "$CLIENT"
  appmesh_delete virtual-service --virtual-service-name "$SERVICE"
  appmesh_delete virtual-node --virtual-node-name "$SERVER"
  appmesh_delete mesh
}

[[ $# -gt 0 ]] || { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$WORK"
for cmd in "$@"; do
  case "$cmd" in
    certs|up|start|traffic|stop|down) "$cmd" ;;
    check) say "traffic and stats"; check ;;
    1|2|3|4|5) step "$cmd" ;;
    all) trap stop EXIT # a step that stops the script leaves nothing running
         certs; up; start; traffic; say "plaintext: the seed's starting point"; check
         for n in 1 2 3 4 5; do step "$n"; done
         trap - EXIT; stop; down
         (( $(failed) == 0 )) || die "$(failed) of $(sent) requests failed"
         say "done: $(sent) requests, none failed, from plaintext to mutual TLS" ;;
    *) die "unknown command $cmd (certs, up, start, traffic, check, 1..5, stop, down, all)" ;;
  esac
done
