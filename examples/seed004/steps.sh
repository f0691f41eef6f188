#!/usr/bin/env bash
# Seed 004 (mutual TLS with file-provided certificates) by hand, against a running `keymesh server`, with the
# AWS CLI: what `keymesh demo` does in one process, one command at a time. See examples/README.md.
#
#   ./examples/seed004/steps.sh certs      # keymesh certs: the CA, the colorteller's and the gateway's files
#   ./examples/seed004/steps.sh up         # the mesh in plain HTTP (the seed's mesh.sh up)
#   ./examples/seed004/steps.sh start      # the colorteller app, keymesh proxy and keymesh gateway, in the background
#   ./examples/seed004/steps.sh check      # curl through the gateway, and the proxies' ssl stats
#   ./examples/seed004/steps.sh 1          # .. 5: the seed's updates (mesh.sh update_1_strict_tls ...), then check
#   ./examples/seed004/steps.sh stop       # stop what start started
#   ./examples/seed004/steps.sh down       # delete the mesh's resources (mesh.sh down)
#   ./examples/seed004/steps.sh all        # certs up start check 1 2 3 4 5 stop down
#
# Several commands may be given at once: `steps.sh certs up start check`.
#
# The JSON files next to this script are the calls' --cli-input-json. They say /keys/ for the certificate
# directory, as the seed does; this script sends them with /keys/ replaced by $KEYS_DIR/.
#
# Environment (defaults in brackets): KEYMESH_ENDPOINT [http://127.0.0.1:7000], KEYMESH_XDS [127.0.0.1:7444],
# KEYMESH_IDENTITY_ENDPOINT [https://127.0.0.1:7443] (keymesh server's defaults); WORK_DIR
# [${TMPDIR:-/tmp}/keymesh-seed004]: tokens, logs, pids; KEYS_DIR [$WORK_DIR/keys]; CT_IP [127.0.0.11],
# GW_IP [127.0.0.12]: the colorteller's and the gateway's loopback addresses; CT_ADMIN [127.0.0.1:9901],
# GW_ADMIN [127.0.0.1:9902]: their admin interfaces. The AWS CLI needs the credentials keymesh server printed
# (export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1).
set -euo pipefail
# HERE, REPO, KEYMESH, ENDPOINT, XDS, IDENTITY, WORK and the helpers (say, run, die, need, start_proxy, ...).
. "$(dirname "$0")/../lib/steps-common.sh"

KEYS="${KEYS_DIR:-$WORK/keys}"
CT_IP="${CT_IP:-127.0.0.11}"
GW_IP="${GW_IP:-127.0.0.12}"
CT_ADMIN="${CT_ADMIN:-127.0.0.1:9901}"
GW_ADMIN="${GW_ADMIN:-127.0.0.1:9902}"

MESH=ColorApp-MutualTLS
DOMAIN=appmesh-mtls.local
NODE=colorteller-vn
GATEWAY=gateway-vgw
ROUTE=colorteller-route

# aws appmesh OPERATION FILE: the call with the file's input, /keys/ pointing at $KEYS.
appmesh() {
  need_aws
  appmesh_send "$1" "$2" "$(sed "s|/keys/|$KEYS/|g" "$HERE/$2")" "   (/keys/ = $KEYS/)"
}

certs() {
  say "certificates in $KEYS (the seed's certs.sh)"
  certs_once colorteller="colorteller.$DOMAIN" gateway="gateway.$DOMAIN"
}

up() {
  say "the mesh, in plain HTTP (mesh.sh up)"
  appmesh create-mesh mesh.json
  appmesh create-virtual-node colorteller-vn.json
  appmesh create-virtual-service colorteller-vs.json
  appmesh create-virtual-gateway gateway-vgw.json
  appmesh create-gateway-route colorteller-route.json
}

start() {
  need curl "to check the proxies: apt-get install -y curl"
  say "the colorteller app on $CT_IP:9080, its sidecar on $CT_IP:15000/15001, the gateway on $GW_IP:9080 (logs in $WORK)"
  mkdir -p "$WORK"
  node -e 'require("node:http").createServer((q, s) => s.end(q.url === "/ping" ? "pong" : "white")).listen(9080, process.argv[1])' "$CT_IP" \
    > "$WORK/colorteller-app.log" 2>&1 &
  echo $! > "$WORK/colorteller-app.pid"
  start_proxy proxy "$NODE" "$CT_IP" "$CT_ADMIN"
  wait_ready "$NODE" "$CT_ADMIN"
  start_proxy gateway "$GATEWAY" "$GW_IP" "$GW_ADMIN"
  wait_ready "$GATEWAY" "$GW_ADMIN"
}

stop() {
  say "stopping the app and the proxies"
  stop_pids "$GATEWAY" "$NODE" colorteller-app
}

down() {
  say "deleting the mesh's resources (mesh.sh down)"
  appmesh_delete gateway-route --virtual-gateway-name "$GATEWAY" --gateway-route-name "$ROUTE"
  appmesh_delete virtual-gateway --virtual-gateway-name "$GATEWAY"
  appmesh_delete virtual-service --virtual-service-name "colorteller.$DOMAIN"
  appmesh_delete virtual-node --virtual-node-name "$NODE"
  appmesh_delete mesh
}

# check [ok|tls|fail]: a request through the gateway, repeated (up to 20 s) until it shows the expected
# outcome, since the configuration takes a moment to reach the proxies: ok = 200, tls = 200 and the
# colorteller counts TLS handshakes, fail = anything else than 200. Then the stats the seed reads.
check() {
  local expect="${1:-}" out code i
  for i in $(seq 1 100); do
    out="$(curl -s -m 10 -w '\n%{http_code}' "http://$GW_IP:9080/" || true)"
    code="${out##*$'\n'}"
    case "$expect" in
      ok) [[ "$code" == 200 ]] && break ;;
      tls) [[ "$code" == 200 && "$(curl -s "http://$CT_ADMIN/stats?usedonly")" == *_15000.ssl.handshake* ]] && break ;;
      fail) [[ "$code" != 200 ]] && break ;;
      *) break ;;
    esac
    sleep 0.2
  done
  printf '+ curl %s\n%s (HTTP %s)\n' "http://$GW_IP:9080/" "${out%$'\n'*}" "$code"
  printf "+ curl -s '%s/stats?usedonly' | grep -E 'ssl\\.(handshake|no_certificate|fail_verify)'   # %s\n" "$CT_ADMIN" "$NODE"
  curl -s "http://$CT_ADMIN/stats?usedonly" | grep -E 'ssl\.(handshake|no_certificate|fail_verify)' || echo '(no output)'
  printf "+ curl -s '%s/stats?usedonly' | grep -E 'ssl\\.(handshake|no_certificate|fail_verify)'   # %s\n" "$GW_ADMIN" "$GATEWAY"
  curl -s "http://$GW_ADMIN/stats?usedonly" | grep -E 'ssl\.(handshake|no_certificate|fail_verify)' || echo '(no output)'
}

step() {
  case "$1" in
    1) say "step 1: strict TLS on the colorteller (mesh.sh update_1_strict_tls). The seed: still white; ssl.handshake rises, ssl.no_certificate equals it"
       appmesh update-virtual-node step1-colorteller-vn-strict-tls.json
       check tls ;;
    2) say "step 2: client policy with the wrong SAN (update_2_client_policy_bad_san). The seed: the request fails; the gateway's ssl.fail_verify_san rises"
       appmesh update-virtual-gateway step2-gateway-vgw-client-policy-bad-san.json
       check fail ;;
    3) say "step 3: the right SAN (update_3_client_policy_good_san). The seed: white again"
       appmesh update-virtual-gateway step3-gateway-vgw-client-policy-good-san.json
       check ok ;;
    4) say "step 4: the colorteller requires a client certificate (update_4_require_client_cert). The seed: fails; ssl.fail_verify_no_cert rises"
       appmesh update-virtual-node step4-colorteller-vn-require-client-cert.json
       check fail ;;
    5) say "step 5: the gateway presents its certificate (update_5_client_cert). The seed: white, over mutual TLS"
       appmesh update-virtual-gateway step5-gateway-vgw-client-cert.json
       check ok ;;
  esac
}

[[ $# -gt 0 ]] || { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$WORK"
for cmd in "$@"; do
  case "$cmd" in
    certs|up|start|stop|down) "$cmd" ;;
    check) say "request and stats"; check ;;
    1|2|3|4|5) step "$cmd" ;;
    all) certs; up; start; say "plain HTTP (the seed's Deploy and Verify): white, no ssl.handshake yet"; check ok
         for n in 1 2 3 4 5; do step "$n"; done; stop; down ;;
    *) die "unknown command $cmd (certs, up, start, check, 1..5, stop, down, all)" ;;
  esac
done
