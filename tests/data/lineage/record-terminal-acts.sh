#!/bin/bash
# usage: record-terminal-acts.sh OUT.ndjson (as root from the repository root, under
# flock /tmp/provarmor-live.lock)
#
# The same administration acts, on a terminal each time: first typed by root in a login
# shell on an ssh terminal (an sshd of its own on 127.0.0.1, a key made here), then run by a
# web shell (webshell.py) that first gives itself a pseudo-terminal with `script`, and with
# python's pty module; then by a detached daemon (setsid) that gives itself one with python.
set -u
OUT=$1
REPO=$(pwd)
W=/tmp/pvtty-rec; rm -rf $W; mkdir -p $W; chmod 755 $W
rm -f $OUT $OUT.position
.venv/bin/provarmor agent --sensor ebpf --out $OUT --duration 300 > $W/agent.log 2>&1 &
AGENT=$!
for i in $(seq 60); do grep -q . $OUT 2>/dev/null && break; sleep 1; done
sleep 12
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# the acts: an account put in adm, a backup of the shadow file and /etc/ssh, a key installed
# for it, a sudoers file written
acts() { # USER
    echo "useradd -m $1; usermod -aG adm $1; tar czf $W/$1.tgz /etc/shadow /etc/ssh;" \
        "install -d -m 700 /home/$1/.ssh; install -m 600 $W/key.pub /home/$1/.ssh/authorized_keys;" \
        "echo '$1 ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/$1; rm /etc/sudoers.d/$1; userdel -r $1"
}
ssh-keygen -q -t ed25519 -N '' -f $W/host_key
ssh-keygen -q -t ed25519 -N '' -f $W/key -C pvtty
install -m 600 $W/key.pub $W/authorized_keys
PORT=$(free_port)
printf '%s\n' "Port $PORT" "ListenAddress 127.0.0.1" "HostKey $W/host_key" "PidFile $W/sshd.pid" \
    "UsePAM yes" "PasswordAuthentication no" "PermitRootLogin prohibit-password" \
    "AuthorizedKeysFile $W/authorized_keys" "StrictModes no" > $W/sshd_config
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 $W/host_key.pub)" > $W/known_hosts
/usr/sbin/sshd -f $W/sshd_config -E $W/sshd.log
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
{ sleep 2; echo "tty; $(acts pvttyadmin)"; sleep 3; echo exit; } |
    timeout 60 ssh -tt -p $PORT -i $W/key -o UserKnownHostsFile=$W/known_hosts \
        root@127.0.0.1 > $W/ssh.log 2>&1
kill "$(cat $W/sshd.pid)"
/usr/bin/python3 $REPO/tests/data/lineage/webshell.py $W/port $W &
WEB=$!
for i in $(seq 50); do [ -s $W/port ] && break; sleep 0.2; done
P=$(cat $W/port)
q() { curl -s -G "http://127.0.0.1:$P/run" --data-urlencode "c=$1" > /dev/null; }
q "script -qec \"tty; $(acts pvttyweb)\" /dev/null"
q "/usr/bin/python3 -c 'import pty, sys; pty.spawn([\"sh\", \"-c\", sys.argv[1]])' \"tty; $(acts pvttypy)\""
kill $WEB
# a detached daemon (no terminal, no server above it, like an implant a cron job left) that
# gives itself a pty
setsid /usr/bin/python3 -c 'import pty, sys; pty.spawn(["sh", "-c", sys.argv[1]])' \
    "tty; $(acts pvttyimp)" < /dev/null > $W/implant.log 2>&1
sleep 4
kill -INT $AGENT; wait $AGENT
echo recorded $(wc -l < $OUT) events
