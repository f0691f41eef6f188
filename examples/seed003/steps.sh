#!/usr/bin/env bash
# Seed 003 (mTLS with SPIFFE identities over SDS) by hand, against a running `keymesh server`, with the AWS
# CLI: what `keymesh demo sds` does in one process, one command at a time. See examples/seed003/README.md.
#
#   ./examples/seed003/steps.sh trust      # the mesh's trust domain, howto-k8s-mtls-sds-based.aws (SPIRE's)
#   ./examples/seed003/steps.sh up         # the mesh: red, green, blue, the router and its routes, the service, front
#   ./examples/seed003/steps.sh start      # the four apps and their keymesh proxies, in the background
#   ./examples/seed003/steps.sh entries    # the SVIDs the proxies got (the seed's spire-server entry show)
#   ./examples/seed003/steps.sh check      # curl -H "color_header: blue" (red, green) through front; the ssl stats
#   ./examples/seed003/steps.sh direct     # curl -k https://<blue's sidecar> without a client certificate: refused
#   ./examples/seed003/steps.sh stop       # stop what start started
#   ./examples/seed003/steps.sh down       # delete the mesh's resources
#   ./examples/seed003/steps.sh all        # trust up start entries check direct stop down
#
# Several commands may be given at once: `steps.sh trust up start check`.
#
# The JSON files next to this script are the calls' --cli-input-json, sent as they are.
#
# Environment (defaults in brackets): KEYMESH_ENDPOINT [http://127.0.0.1:7000], KEYMESH_XDS [127.0.0.1:7444],
# KEYMESH_IDENTITY_ENDPOINT [https://127.0.0.1:7443] (keymesh server's defaults); WORK_DIR
# [${TMPDIR:-/tmp}/keymesh-seed003]: tokens, logs, pids; FRONT_IP, RED_IP, GREEN_IP, BLUE_IP [127.0.0.31 .. .34]:
# each workload's loopback address (its app on :8080, its sidecar on :15000 and :15001); FRONT_ADMIN, RED_ADMIN,
# GREEN_ADMIN, BLUE_ADMIN [127.0.0.1:9931 .. :9934]: the sidecars' admin interfaces; READY_TIMEOUT [120]: the
# seconds a proxy may take to serve. The AWS CLI and keymesh's own commands need the credentials keymesh server
# printed (export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1).
set -euo pipefail
# HERE, REPO, KEYMESH, ENDPOINT, XDS, IDENTITY, WORK and the helpers (say, run, die, need, start_proxy, ...).
. "$(dirname "$0")/../lib/steps-common.sh"

READY_SECONDS="${READY_TIMEOUT:-120}"

MESH=howto-k8s-mtls-sds-based
TRUST_DOMAIN="$MESH.aws"
SERVICE="color.$MESH.svc.cluster.local"
ROUTER="color_$MESH"
WORKLOADS=(front red green blue)
COLORS=(red green blue)
declare -A IP=([front]="${FRONT_IP:-127.0.0.31}" [red]="${RED_IP:-127.0.0.32}" [green]="${GREEN_IP:-127.0.0.33}" [blue]="${BLUE_IP:-127.0.0.34}")
declare -A ADMIN=([front]="${FRONT_ADMIN:-127.0.0.1:9931}" [red]="${RED_ADMIN:-127.0.0.1:9932}" [green]="${GREEN_ADMIN:-127.0.0.1:9933}" [blue]="${BLUE_ADMIN:-127.0.0.1:9934}")

# aws appmesh OPERATION FILE: the call with the file's input.
appmesh() {
  need_aws
  appmesh_send "$1" "$2" "file://$HERE/$2"
}

trust() {
  say "the mesh's trust domain: $TRUST_DOMAIN, as the seed's SPIRE server was installed (before the mesh has a CA)"
  credentials
  run "${KEYMESH[@]}" ca settings --mesh "$MESH" --trust-domain "$TRUST_DOMAIN" --endpoint "$ENDPOINT"
}

up() {
  say "the mesh, as the App Mesh controller creates it from the seed's Kubernetes resources"
  appmesh create-mesh mesh.json
  local c
  for c in "${COLORS[@]}"; do appmesh create-virtual-node "$c-vn.json"; done
  appmesh create-virtual-router color-router.json
  for c in "${COLORS[@]}"; do appmesh create-route "color-route-$c.json"; done
  appmesh create-virtual-service color-vs.json
  appmesh create-virtual-node front-vn.json
}

# start_app WORKLOAD: the color apps answer their color; front asks the color service through its sidecar's
# egress (the same code as keymesh demo's apps).
start_app() {
  local w="$1" handler
  if [[ "$w" == front ]]; then
    handler="frontApp({ egressHost: '${IP[front]}', egressPort: 15001, serviceAuthority: '$SERVICE:8080', header: 'color_header' })"
  else
    handler="colorApp('$w')"
  fi
  node --input-type=module -e "
    import { createServer } from 'node:http';
    import { colorApp, frontApp } from '$REPO/src/cli/demo/seed003-apps.ts';
    createServer($handler).listen(8080, '${IP[$w]}');" > "$WORK/$w-app.log" 2>&1 &
  echo $! > "$WORK/$w-app.pid"
}

start() {
  need curl "to check the proxies: apt-get install -y curl"
  say "the apps on :8080 and their sidecars on :15000/:15001 (logs in $WORK): $(for w in "${WORKLOADS[@]}"; do printf '%s %s  ' "$w" "${IP[$w]}"; done)"
  mkdir -p "$WORK"
  local w
  for w in "${WORKLOADS[@]}"; do start_app "$w"; done
  # One join token per workload: the registration entry its identity is bound to.
  for w in "${WORKLOADS[@]}"; do
    credentials
    start_proxy proxy "${w}_$MESH" "${IP[$w]}" "${ADMIN[$w]}" "$w"
  done
  for w in "${WORKLOADS[@]}"; do wait_ready "$w" "${ADMIN[$w]}"; done
}

entries() {
  say "the SVIDs (the seed's spire-server entry show): one per workload, TTL 3600, renewed at half-life"
  credentials
  run "${KEYMESH[@]}" ca issued --mesh "$MESH" --unexpired --endpoint "$ENDPOINT"
}

stop() {
  say "stopping the proxies and the apps"
  stop_pids front blue green red front-app blue-app green-app red-app
}

down() {
  say "deleting the mesh's resources"
  local c
  appmesh_delete virtual-node --virtual-node-name "front_$MESH"
  appmesh_delete virtual-service --virtual-service-name "$SERVICE"
  for c in "${COLORS[@]}"; do appmesh_delete route --virtual-router-name "$ROUTER" --route-name "color-route-$c"; done
  appmesh_delete virtual-router --virtual-router-name "$ROUTER"
  for c in "${COLORS[@]}"; do appmesh_delete virtual-node --virtual-node-name "${c}_$MESH"; done
  appmesh_delete mesh
}

# ssl_stats COLOR: the ingress listener's handshake counters, the full stats (so that a 0 shows).
ssl_stats() {
  local c="$1"
  printf "+ curl -s %s/stats | grep -E '_15000\\\\.ssl\\\\.(handshake|no_certificate|fail_verify_no_cert):'   # %s\n" "${ADMIN[$c]}" "$c"
  curl -s "http://${ADMIN[$c]}/stats" | grep -E '_15000\.ssl\.(handshake|no_certificate|fail_verify_no_cert):' || echo '(no output)'
}

# check: through front's sidecar (the seed's front:8080) with each color_header, each request repeated (up to
# 60 s) until it answers its color, since the configuration takes a moment to reach the proxies.
check() {
  local c out i
  for c in blue red green; do
    for i in $(seq 1 300); do
      out="$(curl -s -m 10 -H "color_header: $c" "http://${IP[front]}:15000/" || true)"
      [[ "$out" == "$c" ]] && break
      sleep 0.2
    done
    printf '+ curl -H "color_header: %s" http://%s:15000/\n%s\n' "$c" "${IP[front]}" "$out"
    ssl_stats "$c"
  done
  echo "The seed: each color answers; ssl.handshake rises and ssl.no_certificate stays 0 (front presents its SVID)."
}

# direct: the seed's curl -k https://color-blue...:8080 -v from outside the mesh, TLS 1.2 as its curl spoke.
direct() {
  say "straight to blue's sidecar without a client certificate (the seed: curl: (35) ... alert handshake failure)"
  local code=0 out
  printf '+ curl -k -v --tls-max 1.2 https://%s:15000/\n' "${IP[blue]}"
  out="$(curl -k -v -m 10 --tls-max 1.2 "https://${IP[blue]}:15000/" 2>&1)" || code=$?
  grep -E '^\* (TLS|SSL|OpenSSL)|^curl:' <<< "$out" || true
  echo "curl exit code $code (35: the TLS handshake failed)"
  ssl_stats blue
}

[[ $# -gt 0 ]] || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$WORK"
for cmd in "$@"; do
  case "$cmd" in
    trust|up|start|entries|check|direct|stop|down) "$cmd" ;;
    all) trust; up; start; entries; check; direct; stop; down ;;
    *) die "unknown command $cmd (trust, up, start, entries, check, direct, stop, down, all)" ;;
  esac
done
