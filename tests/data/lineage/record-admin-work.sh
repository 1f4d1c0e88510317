#!/bin/bash
# usage: record-admin-work.sh OUT.ndjson benign   (as root, under flock /tmp/provarmor-live.lock)
# needs a user pvadmin (uid >= 1000) with a NOPASSWD sudoers entry and a user pvdeploy
set -u
OUT=$1; KIND=$2
W=/tmp/pvlin-rec; rm -rf $W; mkdir -p $W; chmod 755 $W
cd /work/wt/lineage
.venv/bin/provarmor agent --sensor ebpf --out $OUT --duration 400 > $W/agent.log 2>&1 &
AGENT=$!
for i in $(seq 60); do grep -q . $OUT 2>/dev/null && break; sleep 1; done
sleep 12
if [ $KIND = benign ]; then
  apt-get install -y redis-server > $W/apt.log 2>&1
  apt-get purge -y redis-server redis-tools >> $W/apt.log 2>&1
  su pvadmin -c "cd $W && sudo -n tar czf $W/backup.tgz /etc/ssh /etc/passwd /etc/group" 
  su pvadmin -c "sudo -n usermod -aG adm pvdeploy"
  /usr/bin/python3 -m venv $W/venv
  $W/venv/bin/pip install -q --no-index --find-links /opt/pypi-more/files ujson > $W/pip.log 2>&1
  $W/venv/bin/python -c 'import ujson; print(ujson.dumps([1]))'
fi
sleep 4
kill -INT $AGENT; wait $AGENT
echo recorded $(wc -l < $OUT) events
