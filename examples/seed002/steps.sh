#!/usr/bin/env bash
# Seed 002 (TLS with certificates from ACM) by hand, against a running `keymesh server`, with the AWS CLI:
# what `keymesh demo acm` does in one process, one command at a time. See examples/seed002/README.md.
#
#   ./examples/seed002/steps.sh ca         # the root CA and a managed certificate (the seed's aws acm-pca / aws acm)
#   ./examples/seed002/steps.sh up         # the mesh (the seed's mesh.sh up), with the two ARNs filled in
#   ./examples/seed002/steps.sh start      # the colorteller app, keymesh proxy and keymesh gateway, in the background
#   ./examples/seed002/steps.sh check      # curl $GATEWAY/color, then the colorteller's ssl.handshake stat
#   ./examples/seed002/steps.sh renew      # renew the certificate under traffic; the new serial reaches the proxy
#   ./examples/seed002/steps.sh who        # which proxy holds the certificate, which only the CA (/certs)
#   ./examples/seed002/steps.sh stop       # stop what start started
#   ./examples/seed002/steps.sh down       # delete the mesh's resources and the certificate
#   ./examples/seed002/steps.sh all        # ca up start check renew who stop down
#
# Several commands may be given at once: `steps.sh ca up start check`.
#
# The JSON files next to this script are the calls' --cli-input-json. They say ${CERTIFICATE_ARN} and
# ${ROOT_CA_ARN} where the ARNs go, and port 80 as the seed does; this script fills in the ARNs that `ca`
# saved in $WORK_DIR and the port $PORT.
#
# Environment (defaults in brackets): KEYMESH_ENDPOINT [http://127.0.0.1:7000], KEYMESH_XDS [127.0.0.1:7444],
# KEYMESH_IDENTITY_ENDPOINT [https://127.0.0.1:7443] (keymesh server's defaults); WORK_DIR
# [${TMPDIR:-/tmp}/keymesh-seed002]: ARNs, tokens, logs, pids; CT_IP [127.0.0.21], GW_IP [127.0.0.22]: the
# colorteller's and the gateway's loopback addresses (each proxy's admin interface is on its address, port
# 9901, as in the seed); PORT [80 as root, else 8080]: the listeners' port. The AWS CLI and keymesh ca need the
# credentials keymesh server printed (export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1).
set -euo pipefail
# HERE, REPO, KEYMESH, ENDPOINT, XDS, IDENTITY, WORK and the helpers (say, run, die, need, start_proxy, ...).
. "$(dirname "$0")/../lib/steps-common.sh"

CT_IP="${CT_IP:-127.0.0.21}"
GW_IP="${GW_IP:-127.0.0.22}"
if [[ -z "${PORT:-}" ]]; then
  # Ports below 1024 need root on most systems: 8080 stands for the seed's 80 then.
  [[ "$(id -u)" == 0 ]] && PORT=80 || PORT=8080
fi

MESH=ColorApp-TLS
SERVICES_DOMAIN=default.svc.cluster.local
NODE=ColorTellerWhite
GATEWAY=ColorGateway
ROUTE=ColorGatewayRoute
SERVICE="colorteller.$SERVICES_DOMAIN"

# Here the commands are shown on stderr, as km's must be: what keymesh ca prints is captured (| field arn).
run() { printf '+ %s\n' "$*" >&2; "$@"; }
km() { printf '+ keymesh %s\n' "$*" >&2; "${KEYMESH[@]}" "$@"; }

# FIELD < JSON: one top-level string field of a JSON answer (keymesh ca prints JSON).
field() {
  node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}

arn() {
  [[ -f "$WORK/$1.arn" ]] || die "no $1 ARN in $WORK: run \`steps.sh ca\` first"
  cat "$WORK/$1.arn"
}

# aws appmesh OPERATION FILE: the call with the file's input, the ARNs and the port filled in.
appmesh() {
  local input
  need_aws
  input="$(sed -e "s|\${CERTIFICATE_ARN}|$(arn certificate)|g" -e "s|\${ROOT_CA_ARN}|$(arn root-ca)|g" \
    -e "s|\"port\": 80,|\"port\": $PORT,|g" "$HERE/$2")"
  appmesh_send "$1" "$2" "$input" "   (ARNs filled in, port $PORT)"
}

ca() {
  credentials
  say "the root CA and a managed certificate (the seed's aws acm-pca create-certificate-authority ... and aws acm request-certificate)"
  if [[ -f "$WORK/certificate.arn" ]]; then
    echo "already there: ROOT_CA_ARN=$(arn root-ca) CERTIFICATE_ARN=$(arn certificate); remove $WORK/*.arn to make new ones"
    return
  fi
  # The seed's CA: KeyAlgorithm=RSA_2048, SigningAlgorithm=SHA256WITHRSA.
  km ca settings --mesh "$MESH" --key-type rsa-2048 --endpoint "$ENDPOINT" > /dev/null
  km ca init --mesh "$MESH" --endpoint "$ENDPOINT" | field arn > "$WORK/root-ca.arn"
  echo "ROOT_CA_ARN=$(arn root-ca)"
  km ca request-certificate --mesh "$MESH" --domain-name "*.$SERVICES_DOMAIN" --ca "$(arn root-ca)" --endpoint "$ENDPOINT" \
    | field arn > "$WORK/certificate.arn"
  echo "CERTIFICATE_ARN=$(arn certificate)"
}

up() {
  say "the mesh (mesh.sh up): ColorTellerWhite in STRICT TLS with the certificate, ColorGateway trusting the CA"
  appmesh create-mesh mesh.json
  appmesh create-virtual-node colorteller-white-vn.json
  appmesh create-virtual-service colorteller-vs.json
  appmesh create-virtual-gateway color-gateway-vgw.json
  appmesh create-gateway-route color-gateway-route.json
}

start() {
  need curl "to check the proxies: apt-get install -y curl"
  say "the colorteller app on $CT_IP:$PORT, its sidecar on $CT_IP:15000/15001, the gateway on $GW_IP:$PORT (logs in $WORK)"
  node -e 'require("node:http").createServer((q, s) => s.end(q.url === "/ping" ? "pong" : "white")).listen(Number(process.argv[2]), process.argv[1])' \
    "$CT_IP" "$PORT" > "$WORK/colorteller-app.log" 2>&1 &
  echo $! > "$WORK/colorteller-app.pid"
  start_proxy proxy "$NODE" "$CT_IP" "$CT_IP:9901"
  wait_ready "$NODE" "$CT_IP:9901"
  start_proxy gateway "$GATEWAY" "$GW_IP" "$GW_IP:9901"
  wait_ready "$GATEWAY" "$GW_IP:9901"
}

stop() {
  say "stopping the app and the proxies"
  stop_pids "$GATEWAY" "$NODE" colorteller-app
}

down() {
  say "deleting the mesh's resources and the certificate (the seed's clean-up)"
  appmesh_delete gateway-route --virtual-gateway-name "$GATEWAY" --gateway-route-name "$ROUTE"
  appmesh_delete virtual-gateway --virtual-gateway-name "$GATEWAY"
  appmesh_delete virtual-service --virtual-service-name "$SERVICE"
  appmesh_delete virtual-node --virtual-node-name "$NODE"
  appmesh_delete mesh
  # The seed's aws acm delete-certificate. Its CA stays in the server's data directory (keymesh deletes no CA).
  km ca delete-certificate "$(arn certificate)" --endpoint "$ENDPOINT" > /dev/null
  rm -f "$WORK/certificate.arn" "$WORK/root-ca.arn"
}

# certs ADMIN: a proxy's /certs in short: per TLS context, the certificate it presents and the CAs it trusts.
certs() {
  curl -s "http://$1/certs" | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      const names = (d) => d.subject_alt_names.map((n) => n.dns ?? n.uri ?? n.ip_address).join(", ");
      for (const c of JSON.parse(s).certificates) {
        console.log(`presents ${c.cert_chain.map((d) => `${d.serial_number} (${names(d)})`).join(", ") || "nothing"}; ` +
          `trusts ${c.ca_cert.map((d) => `${d.serial_number} (${names(d)})`).join(", ") || "no CA (validates no peer)"}`);
      }
    });'
}

# The serial the colorteller presents for the certificate (its name is the certificate's domain).
served_serial() {
  local line
  line="$(certs "$CT_IP:9901" | grep -F "(*.$SERVICES_DOMAIN)" || true)"
  line="${line#presents }"
  echo "${line%% *}"
}

gateway_url() {
  [[ "$PORT" == 80 ]] && echo "http://$GW_IP/color" || echo "http://$GW_IP:$PORT/color"
}

# check: curl through the gateway, repeated (up to 20 s) until it answers 200, since the configuration takes a
# moment to reach the proxies; then the stat the seed reads on its bastion.
check() {
  local out code i url
  url="$(gateway_url)"
  say "a request through the gateway, and the colorteller's TLS handshakes"
  for i in $(seq 1 100); do
    out="$(curl -s -m 10 -w '\n%{http_code}' "$url" || true)"
    code="${out##*$'\n'}"
    [[ "$code" == 200 ]] && break
    sleep 0.2
  done
  printf '+ curl %s\n%s (HTTP %s)\n' "$url" "${out%$'\n'*}" "$code"
  printf '+ curl -s http://%s:9901/stats | grep ssl.handshake   # the seed: listener.0.0.0.0_15000.ssl.handshake: 1\n' "$CT_IP"
  curl -s "http://$CT_IP:9901/stats" | grep ssl.handshake || echo '(no output)'
}

# traffic: in the background, rounds of a request through the gateway and a new TLS handshake straight to the
# colorteller (trusting only the CA), until $WORK/traffic.stop appears (300 rounds at most); writes
# "ROUNDS FAILED" to $WORK/traffic.result.
traffic() {
  local url="$1" rounds=0 failed=0 i
  for i in $(seq 1 300); do
    [[ -f "$WORK/traffic.stop" ]] && break
    rounds=$((rounds + 1))
    [[ "$(curl -s -m 10 "$url" || true)" == white ]] || failed=$((failed + 1))
    [[ "$(curl -s -m 10 --cacert "$WORK/root-ca.pem" --resolve "$SERVICE:15000:$CT_IP" "https://$SERVICE:15000/color" || true)" == white ]] \
      || failed=$((failed + 1))
  done
  echo "$rounds $failed" > "$WORK/traffic.result"
}

# renew: the certificate is renewed while traffic goes on, until the colorteller presents the new serial.
renew() {
  local before after i result pid
  credentials
  say "managed renewal under traffic (the seed's ACM renews on its own; aws acm renew-certificate does it now)"
  km ca bundle --mesh "$MESH" --endpoint "$ENDPOINT" > "$WORK/root-ca.pem"
  before="$(served_serial)"
  echo "the colorteller presents serial $before"
  printf '+ (curl %s; curl --cacert %s --resolve %s:15000:%s https://%s:15000/color) in a loop, in the background\n' \
    "$(gateway_url)" "$WORK/root-ca.pem" "$SERVICE" "$CT_IP" "$SERVICE"
  rm -f "$WORK/traffic.stop" "$WORK/traffic.result"
  traffic "$(gateway_url)" &
  pid=$!
  sleep 1
  echo "renewed: serial $(km ca renew-certificate "$(arn certificate)" --endpoint "$ENDPOINT" | field serial)"
  for i in $(seq 1 100); do
    after="$(served_serial)"
    [[ "$after" != "$before" ]] && break
    sleep 0.1
  done
  sleep 1
  touch "$WORK/traffic.stop"
  wait "$pid"
  read -r rounds failed < "$WORK/traffic.result"
  echo "the colorteller presents serial $after; traffic: $rounds rounds (a request through the gateway and a direct TLS one each), $failed failed"
  if command -v openssl >/dev/null; then
    printf '+ openssl s_client -connect %s:15000 -servername %s -CAfile %s | openssl x509 -noout -serial\n' "$CT_IP" "$SERVICE" "$WORK/root-ca.pem"
    openssl s_client -connect "$CT_IP:15000" -servername "$SERVICE" -CAfile "$WORK/root-ca.pem" < /dev/null 2>/dev/null | openssl x509 -noout -serial
  fi
  printf '+ curl -s http://%s:9901/stats | grep ssl.handshake\n' "$CT_IP"
  curl -s "http://$CT_IP:9901/stats" | grep ssl.handshake
  [[ "$failed" == 0 && -n "$after" && "$after" != "$before" ]] || die "the renewal did not behave as the seed says"
}

# who: the seed's appendix question, answered by what each proxy holds.
who() {
  say "who holds the certificate and its key: only the proxy whose spec names its ARN; the gateway gets the CA"
  printf '+ curl -s http://%s:9901/certs   # %s (and its own SPIFFE certificate)\n' "$CT_IP" "$NODE"
  certs "$CT_IP:9901"
  printf '+ curl -s http://%s:9901/certs   # %s\n' "$GW_IP" "$GATEWAY"
  certs "$GW_IP:9901"
}

[[ $# -gt 0 ]] || { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$WORK"
for cmd in "$@"; do
  case "$cmd" in
    ca|up|start|check|renew|who|stop|down) "$cmd" ;;
    all) ca; up; start; check; renew; who; stop; down ;;
    *) die "unknown command $cmd (ca, up, start, check, renew, who, stop, down, all)" ;;
  esac
done
