# Shared by the walkthroughs' steps.sh scripts, which source it (`. "$(dirname "$0")/../lib/steps-common.sh"`)
# after `set -euo pipefail` and before their own settings: where keymesh and the control plane are, the work
# directory, and the helpers each replay uses. The sourcing script is $0; its folder's name (seed004) names the
# work directory and the example files in the commands it prints.

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SEED="$(basename "$HERE")"
# The project's Node.js (npm ci installs it) runs keymesh (and the scripts' apps).
export PATH="$REPO/node_modules/.bin:$PATH"
KEYMESH=(node "$REPO/src/cli/main.ts")

ENDPOINT="${KEYMESH_ENDPOINT:-http://127.0.0.1:7000}"
XDS="${KEYMESH_XDS:-127.0.0.1:7444}"
IDENTITY="${KEYMESH_IDENTITY_ENDPOINT:-https://127.0.0.1:7443}"
WORK="${WORK_DIR:-${TMPDIR:-/tmp}/keymesh-$SEED}"
# How long wait_ready waits for a proxy to serve, in seconds (a script may change it).
READY_SECONDS=30

# `set -e` stops a script at the first failing command without a word: say which one (functions too: -E).
set -E
trap 'rc=$?; printf "steps.sh: stopped: \`%s\` failed (exit %s, line %s)\n" "$BASH_COMMAND" "$rc" "$LINENO" >&2' ERR

say() { printf '\n== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
die() { printf 'steps.sh: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null || die "needs $1 ($2)"
}

credentials() {
  [[ -n "${AWS_ACCESS_KEY_ID:-}" ]] || die "export the credentials keymesh server printed (keymesh credentials prints them again)"
}

# need_aws: the AWS CLI, and the credentials it signs with.
need_aws() {
  need aws "the AWS CLI: apt-get install -y awscli, or https://aws.amazon.com/cli/"
  credentials
}

# certs_once NAME=DNS...: keymesh certs: a CA in $KEYS and, from it, a certificate for each NAME with its DNS name;
# nothing when $KEYS already holds a CA.
certs_once() {
  local pair
  if [[ -f "$KEYS/ca_cert.pem" ]]; then
    echo "already there; remove $KEYS to make new ones"
    return
  fi
  run "${KEYMESH[@]}" certs ca --out "$KEYS"
  for pair in "$@"; do
    run "${KEYMESH[@]}" certs issue --ca-dir "$KEYS" --name "${pair%%=*}" --dns "${pair#*=}" --out "$KEYS"
  done
}

# appmesh_send OPERATION FILE INPUT [NOTE]: aws appmesh OPERATION with INPUT as its --cli-input-json, shown as
# the example FILE's (then NOTE); prints the resource's ARN and version.
appmesh_send() {
  printf '+ aws appmesh %s --cli-input-json file://examples/%s/%s --endpoint-url %s%s\n' "$1" "$SEED" "$2" "$ENDPOINT" "${4:-}"
  aws appmesh "$1" --endpoint-url "$ENDPOINT" --cli-input-json "$3" --query '*.[metadata.arn, metadata.version]' --output text
}

# appmesh_delete RESOURCE ARGS...: aws appmesh delete-RESOURCE (mesh, virtual-node, gateway-route, ...) in $MESH;
# prints the deleted resource's ARN.
appmesh_delete() {
  local what="$1" key="" part
  shift
  for part in ${what//-/ }; do [[ -z "$key" ]] && key="$part" || key+="${part^}"; done
  run aws appmesh "delete-$what" --endpoint-url "$ENDPOINT" --mesh-name "$MESH" "$@" --query "$key.metadata.arn" --output text
}

# start_proxy KIND NAME IP ADMIN [FILES]: a join token for the virtual node (KIND proxy) or virtual gateway (KIND
# gateway) NAME of $MESH, then keymesh KIND in the background, listening on IP, its admin interface on ADMIN. Its
# token, log and pid are $WORK/FILES.token, .log and .pid (FILES: NAME). wait_ready waits for it.
start_proxy() {
  local kind="$1" name="$2" ip="$3" admin="$4" files="${5:-$2}" flag
  [[ "$kind" == proxy ]] && flag=--virtual-node || flag=--virtual-gateway
  "${KEYMESH[@]}" token create --mesh "$MESH" "$flag" "$name" --endpoint "$ENDPOINT" --ca-out "$WORK/cp-ca.pem" > "$WORK/$files.token"
  local args=("$kind" --mesh "$MESH" "$flag" "$name" --xds "$XDS" --identity-endpoint "$IDENTITY"
    --control-plane-ca "$WORK/cp-ca.pem" --join-token-file "$WORK/$files.token"
    --listen-address "$ip" --app-address "$ip" --admin "$admin")
  printf '+ keymesh %s &\n' "${args[*]}"
  # Started directly (not through a function) so that the pid is the proxy's own.
  "${KEYMESH[@]}" "${args[@]}" > "$WORK/$files.log" 2>&1 &
  echo $! > "$WORK/$files.pid"
}

# wait_ready NAME ADMIN: until the proxy's /ready says LIVE (every listener serving), READY_SECONDS at most (a
# second or two on an idle machine; a busy one may need far longer).
wait_ready() {
  local name="$1" admin="$2" i
  for i in $(seq 1 $((READY_SECONDS * 5))); do
    [[ "$(curl -s -m 5 "http://$admin/ready" || true)" == LIVE* ]] && { echo "$name ready (admin $admin)"; return; }
    sleep 0.2
  done
  die "$name not ready after $READY_SECONDS s; see $WORK/$name.log (steps.sh stop stops what start started)"
}

# stop_pids NAME...: SIGTERM to each process whose pid start saved in $WORK/NAME.pid.
stop_pids() {
  local name pid
  for name in "$@"; do
    [[ -f "$WORK/$name.pid" ]] || continue
    pid="$(cat "$WORK/$name.pid")"
    kill "$pid" 2>/dev/null && echo "stopped $name ($pid)" || true
    rm -f "$WORK/$name.pid"
  done
}
