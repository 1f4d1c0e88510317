#!/bin/bash
# Records login-implant.ndjson: the kernel sensor and the journal together, as the agent
# collects them (`--set agent.host_logs=journald`), while a client in one network namespace
# guesses the password of a throwaway account on OpenSSH's sshd in another, logs in with the
# right one, drops a copy of /bin/true as /tmp/.hl-implant and runs it.
# Run as root under the shared lock:
#   flock /tmp/provarmor-live.lock tests/data/hostlogs/record-login.sh OUT_DIR
# Every user, file, namespace and daemon it creates is removed at the end (trap).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=$(realpath "${1:?output folder}")
WORK=$(mktemp -d /tmp/hostlogs-login.XXXXXX)
SERVER_NS=hlj-sshd CLIENT_NS=hlj-client
SERVER_IP=10.99.16.2 CLIENT_IP=10.99.16.1
VICTIM=hljvictim PASSWORD='Autumn2026!'
IMPLANT=/tmp/.hl-implant
PIDS=()
AGENT=""
started_journald=0

cleanup() {
    set +e
    [ -n "$AGENT" ] && kill -INT "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    ip netns del "$SERVER_NS" 2>/dev/null; ip netns del "$CLIENT_NS" 2>/dev/null
    getent passwd "$VICTIM" >/dev/null && userdel -f -r "$VICTIM" 2>/dev/null
    getent passwd "$VICTIM" >/dev/null && userdel -f "$VICTIM"
    rm -f "$IMPLANT"
    if [ "$started_journald" = 1 ]; then
        rm -f /dev/log
        rm -rf /run/systemd/journal /run/systemd/journald.conf.d /run/log
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- journald (standalone, volatile) when none runs, as record.sh
if ! pgrep -x systemd-journal >/dev/null; then
    mkdir -p /run/systemd/journald.conf.d
    printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\nReadKMsg=no\nAudit=no\n' >/run/systemd/journald.conf.d/hostlogs.conf
    /lib/systemd/systemd-journald & PIDS+=($!)
    started_journald=1
    for _ in $(seq 50); do [ -S /run/systemd/journal/dev-log ] && break; sleep 0.1; done
    ln -sf /run/systemd/journal/dev-log /dev/log
fi

# --- the account, sshd in its namespace, the client in another (veth pair)
useradd -m -s /bin/bash "$VICTIM"
echo "$VICTIM:$PASSWORD" | chpasswd
ip netns add "$SERVER_NS"; ip netns add "$CLIENT_NS"
ip link add hlj-veth0 type veth peer name hlj-veth1
ip link set hlj-veth0 netns "$CLIENT_NS"; ip link set hlj-veth1 netns "$SERVER_NS"
ip -n "$CLIENT_NS" addr add "$CLIENT_IP/24" dev hlj-veth0
ip -n "$SERVER_NS" addr add "$SERVER_IP/24" dev hlj-veth1
for ns in "$CLIENT_NS" "$SERVER_NS"; do ip -n "$ns" link set lo up; done
ip -n "$CLIENT_NS" link set hlj-veth0 up; ip -n "$SERVER_NS" link set hlj-veth1 up
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
cat >"$WORK/sshd_config" <<CONF
Port 22
ListenAddress $SERVER_IP
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
MaxAuthTries 3
SyslogFacility AUTH
LogLevel INFO
CONF
mkdir -p /run/sshd
printf '#!/bin/sh\necho "$SSH_TRY_PASSWORD"\n' >"$WORK/askpass"; chmod +x "$WORK/askpass"

# --- the agent: kernel sensor + journal, written to NDJSON
"$ROOT/.venv/bin/provarmor" --set agent.host_logs=journald agent --state-dir "$WORK/agent" \
    --out "$WORK/capture.ndjson" --duration 120 >"$WORK/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 120); do
    grep -Eq '"dataset":"(ebpf|auditd)"' "$WORK/capture.ndjson" 2>/dev/null && break
    sleep 0.5
done
sleep 2
logger -t hlj-record "capture started"

# sshd starts after the agent, so the sensor sees it and every process it forks
ip netns exec "$SERVER_NS" /usr/sbin/sshd -D -f "$WORK/sshd_config" & PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$CLIENT_NS" bash -c "exec 3<>/dev/tcp/$SERVER_IP/22" 2>/dev/null && break; sleep 0.1; done

try_ssh() { # password command
    SSH_TRY_PASSWORD=$1 SSH_ASKPASS="$WORK/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ip netns exec "$CLIENT_NS" setsid ssh -n -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 \
        -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=3 \
        "$VICTIM@$SERVER_IP" "$2" </dev/null || true
}
# brute force: 3 connections x 3 wrong passwords, then the right one drops and runs a tool
for guess in 1 2 3; do try_ssh "wrong-$guess" true; done
try_ssh "$PASSWORD" "cp /bin/true $IMPLANT && chmod 755 $IMPLANT && $IMPLANT && echo ran"
sleep 3
kill -INT "$AGENT"; wait "$AGENT" || true
AGENT=""
# keep every journal event and the kernel events of sshd (started by this script) and all it
# started (the sessions, the implant); the client's namespace stands for a remote machine,
# so its processes, and other work on this machine, stay out
python3 - "$WORK/capture.ndjson" "$OUT/login-implant.ndjson" "$$" <<'PY'
import json, sys
source, target, script_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(source) as lines:
    events = [(line, json.loads(line)) for line in lines]
tree = {
    event["process"]["entity_id"]
    for _line, event in events
    if event["event"]["action"] == "exec"
    and event["process"].get("executable") == "/usr/sbin/sshd"
    and (event["process"].get("parent") or {}).get("pid") == script_pid
}
kept = []
for line, event in events:
    process = event["process"]
    if (process.get("parent") or {}).get("entity_id") in tree:
        tree.add(process["entity_id"])
    if event["event"]["dataset"] == "journald" or process["entity_id"] in tree:
        kept.append(line)
with open(target, "w") as out:
    out.writelines(kept)
PY
gzip -9 -n -f "$OUT/login-implant.ndjson"
ls -l "$OUT/login-implant.ndjson.gz"
