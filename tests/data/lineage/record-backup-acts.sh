#!/bin/bash
# usage: record-backup-acts.sh OUT.ndjson backup|piped   (as root, under flock /tmp/provarmor-live.lock)
# backup: the issue's `tar czf backup.tgz /etc/ssh /etc/passwd ...` typed in a root shell with
#   no terminal and no login (a script, a remote-execution channel), then a zip and an rsync copy
# piped: the same tar written to standard output and sent by nc to a listener on loopback
set -u
OUT=$1; KIND=$2
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=/tmp/pvbackup-rec; rm -rf $W; mkdir -p $W; chmod 700 $W
"$ROOT/.venv/bin/provarmor" agent --sensor ebpf --out $OUT --duration 400 > $W/agent.log 2>&1 &
AGENT=$!
for i in $(seq 60); do grep -q . $OUT 2>/dev/null && break; sleep 1; done
sleep 12
cd $W
if [ $KIND = backup ]; then
  tar czf backup.tgz /etc/ssh /etc/passwd /etc/shadow /etc/group 2> /dev/null
  zip -qr $W/ssh.zip /etc/ssh
  rsync -a /etc/ssh/ $W/ssh-copy/
else
  nc -l 127.0.0.1 47123 > $W/received.tgz &
  LISTENER=$!
  sleep 1
  tar czf - /etc/ssh /etc/shadow 2> /dev/null | nc -q 1 127.0.0.1 47123
  wait $LISTENER
fi
cd /
sleep 4
kill -INT $AGENT; wait $AGENT
rm -rf $W
echo recorded $(wc -l < $OUT) events
