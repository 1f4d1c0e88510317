#!/bin/bash
# Records the host-log fixtures in this folder on a real Debian 12 machine (run as root):
# systemd-journald (standalone, volatile), Debian's rsyslog (reading the journal), OpenSSH's
# sshd inside a network namespace, sudo, su, useradd/usermod/chage/passwd/userdel and cron.
# Every user, file, namespace and daemon it creates is removed at the end (trap).
# Usage: tests/data/hostlogs/record.sh OUT_DIR [attack|benign]
#   attack (default): brute force, spraying, sudo refusals, a uid-0 account ... (see README)
#   benign: the same accounts (created before the capture starts) doing ordinary work
set -euo pipefail
OUT=$(realpath "${1:?output folder}")
MODE=${2:-attack}
WORK=$(mktemp -d /tmp/hostlogs-record.XXXXXX)
SERVER_NS=hl-sshd CLIENT_NS=hl-client
SERVER_IP=10.99.15.2 CLIENT_IP=10.99.15.1
VICTIM=hlvictim ADMIN=hladmin ROOTLIKE=hlroot PASSWORD='Summer2026!'
PIDS=()
started_journald=0

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    ip netns del "$SERVER_NS" 2>/dev/null; ip netns del "$CLIENT_NS" 2>/dev/null
    for user in "$VICTIM" "$ADMIN" "$ROOTLIKE"; do
        getent passwd "$user" >/dev/null && userdel -f -r "$user" 2>/dev/null
        getent passwd "$user" >/dev/null && userdel -f "$user"
    done
    rm -f /etc/sudoers.d/hostlogs-record /etc/cron.d/hostlogs-record
    rm -f "/var/spool/cron/crontabs/$VICTIM" /run/crond.pid
    if [ "$started_journald" = 1 ]; then
        rm -f /dev/log
        rm -rf /run/systemd/journal /run/systemd/journald.conf.d /run/log
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start_capture() {
# --- journald (standalone, volatile storage under /run) and /dev/log
if ! pgrep -x systemd-journal >/dev/null; then
    mkdir -p /run/systemd/journald.conf.d
    printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\nReadKMsg=no\nAudit=no\n' >/run/systemd/journald.conf.d/hostlogs.conf
    /lib/systemd/systemd-journald & PIDS+=($!)
    started_journald=1
    for _ in $(seq 50); do [ -S /run/systemd/journal/dev-log ] && break; sleep 0.1; done
    ln -sf /run/systemd/journal/dev-log /dev/log
fi
SINCE=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1

# --- rsyslog: Debian's rules for auth/authpriv and cron, read from the journal, written in
# Debian 12's default file format, the traditional (RFC 3164) one and RFC 5424. Kernel audit
# records (which journald collects when another program has audit on) are left out.
cat >"$WORK/rsyslog.conf" <<CONF
module(load="imjournal" StateFile="$WORK/imjournal.state" IgnorePreviousMessages="on")
\$WorkDirectory $WORK
:programname, isequal, "audit" stop
auth,authpriv.*  $WORK/auth.log
cron.*           $WORK/cron.log
auth,authpriv.*;cron.*  action(type="omfile" file="$WORK/auth-traditional.log" template="RSYSLOG_TraditionalFileFormat")
auth,authpriv.*;cron.*  action(type="omfile" file="$WORK/auth-rfc5424.log" template="RSYSLOG_SyslogProtocol23Format")
CONF
rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" & PIDS+=($!)
sleep 2
}

make_users() {
# --- users: a victim with a weak password, an admin allowed to sudo
useradd -m -s /bin/bash "$VICTIM"
echo "$VICTIM:$PASSWORD" | chpasswd
useradd -m -s /bin/bash "$ADMIN"
echo "$ADMIN:admin-Pw-$$" | chpasswd
echo "$ADMIN ALL=(ALL) ALL" >/etc/sudoers.d/hostlogs-record
chmod 0440 /etc/sudoers.d/hostlogs-record
usermod -c "record victim" "$VICTIM"
chage -M 90 "$VICTIM"
printf '%s\n%s\n' "$PASSWORD" "$PASSWORD" | passwd "$VICTIM" >/dev/null 2>&1 || true
}

start_sshd() {
# --- sshd in its own namespace, a client in another, joined by a veth pair
ip netns add "$SERVER_NS"; ip netns add "$CLIENT_NS"
ip link add hl-veth0 type veth peer name hl-veth1
ip link set hl-veth0 netns "$CLIENT_NS"; ip link set hl-veth1 netns "$SERVER_NS"
ip -n "$CLIENT_NS" addr add "$CLIENT_IP/24" dev hl-veth0
ip -n "$SERVER_NS" addr add "$SERVER_IP/24" dev hl-veth1
ip -n "$CLIENT_NS" link set lo up; ip -n "$SERVER_NS" link set lo up
ip -n "$CLIENT_NS" link set hl-veth0 up; ip -n "$SERVER_NS" link set hl-veth1 up
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
ip netns exec "$SERVER_NS" /usr/sbin/sshd -D -f "$WORK/sshd_config" & PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$CLIENT_NS" bash -c "exec 3<>/dev/tcp/$SERVER_IP/22" 2>/dev/null && break; sleep 0.1; done

printf '#!/bin/sh\necho "$SSH_TRY_PASSWORD"\n' >"$WORK/askpass"; chmod +x "$WORK/askpass"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
install -d -m 700 -o "$ADMIN" -g "$ADMIN" "/home/$ADMIN/.ssh"
install -m 600 -o "$ADMIN" -g "$ADMIN" "$WORK/client_key.pub" "/home/$ADMIN/.ssh/authorized_keys"
}

try_ssh() { # user password [extra ssh options]
    local user=$1 password=$2; shift 2
    SSH_TRY_PASSWORD=$password SSH_ASKPASS="$WORK/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ip netns exec "$CLIENT_NS" setsid ssh -n -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 \
        -o NumberOfPasswordPrompts=3 "$@" "$user@$SERVER_IP" true </dev/null || true
}
attack() {
# brute force against the victim: 3 connections x 3 wrong passwords
for guess in 1 2 3; do try_ssh "$VICTIM" "wrong-$guess" -o PubkeyAuthentication=no; done
# spraying: one password against several accounts, real and invalid
for user in "$ADMIN" alice bob oracle postgres test; do
    try_ssh "$user" 'Winter2025!' -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1
done
# the guess that works, after the burst
try_ssh "$VICTIM" "$PASSWORD" -o PubkeyAuthentication=no
# a public-key login of the admin
try_ssh "$ADMIN" unused -i "$WORK/client_key" -o PasswordAuthentication=no
# a wrong key for the victim (publickey refused, connection closed preauth)
try_ssh "$VICTIM" unused -i "$WORK/client_key" -o PasswordAuthentication=no

# --- sudo and su
su "$VICTIM" -c "echo wrong | sudo -S -k id" >/dev/null 2>&1 || true      # NOT in sudoers
su "$ADMIN" -c "printf 'bad1\nbad2\nbad3\n' | sudo -S -k id" >/dev/null 2>&1 || true  # 3 failures
su "$ADMIN" -c "echo admin-Pw-$$ | sudo -S -k -u $VICTIM /usr/bin/id -un" >/dev/null 2>&1 || true
su "$ADMIN" -c "echo admin-Pw-$$ | sudo -S -k /usr/bin/cat /etc/shadow" >/dev/null 2>&1 || true
su - "$VICTIM" -c true

# --- a second account with uid 0 (persistence), then deleted
useradd -o -u 0 -g 0 -M -s /bin/bash "$ROOTLIKE"
userdel -f "$ROOTLIKE"

}

benign() {
# the victim (here an ordinary user) mistypes once, then logs in; logs in twice more
cat >"$WORK/askpass-typo" <<ASK
#!/bin/sh
if [ -e "$WORK/typed" ]; then echo "\$SSH_TRY_PASSWORD"; else touch "$WORK/typed"; echo typo; fi
ASK
chmod +x "$WORK/askpass-typo"
SSH_TRY_PASSWORD=$PASSWORD SSH_ASKPASS="$WORK/askpass-typo" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ip netns exec "$CLIENT_NS" setsid ssh -n -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PubkeyAuthentication=no \
    "$VICTIM@$SERVER_IP" true </dev/null || true
for _ in 1 2; do try_ssh "$VICTIM" "$PASSWORD" -o PubkeyAuthentication=no; done
try_ssh "$ADMIN" unused -i "$WORK/client_key" -o PasswordAuthentication=no
su "$ADMIN" -c "echo admin-Pw-$$ | sudo -S -k /usr/bin/apt-cache policy" >/dev/null 2>&1 || true
su "$ADMIN" -c "echo admin-Pw-$$ | sudo -S -k -u $VICTIM /usr/bin/id" >/dev/null 2>&1 || true
su - "$VICTIM" -c true
chage -M 120 "$VICTIM"
}

cron_jobs() {
# --- cron: a job run by the daemon, and a crontab replaced
echo "* * * * * root /bin/echo hostlogs-record >/dev/null" >/etc/cron.d/hostlogs-record
echo "*/5 * * * * /usr/bin/true" | crontab -u "$VICTIM" -
cron -f -L 15 & PIDS+=($!)
for _ in $(seq 65); do grep -q 'CMD (/bin/echo hostlogs-record' "$WORK/cron.log" 2>/dev/null && break; sleep 1; done
sleep 2
}

if [ "$MODE" = attack ]; then
    start_capture; make_users; start_sshd; attack; cron_jobs
    PREFIX=""
else
    make_users; start_sshd; start_capture; benign; cron_jobs
    PREFIX="benign-"
fi

# --- collect
journalctl -o json --since "$SINCE" --no-pager \
    | grep -E '"SYSLOG_IDENTIFIER":"(sshd|sudo|su|useradd|usermod|userdel|chage|passwd|chpasswd|groupadd|groupdel|CRON|cron|crontab)"' \
    >"$OUT/${PREFIX}journal.json"
cp "$WORK/auth.log" "$OUT/${PREFIX}auth.log"
if [ "$MODE" = attack ]; then
    cp "$WORK/auth-traditional.log" "$OUT/auth-traditional.log"
    cp "$WORK/auth-rfc5424.log" "$OUT/auth-rfc5424.log"
    cp "$WORK/cron.log" "$OUT/cron.log"
fi
wc -l "$OUT"/*
