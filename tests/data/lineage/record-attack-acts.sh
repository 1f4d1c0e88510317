#!/bin/bash
# usage: record-attack-acts.sh OUT.ndjson (as root, under flock /tmp/provarmor-live.lock)
#
set -u
OUT=$1
W=/tmp/pvlin-rec2; rm -rf $W; mkdir -p $W; chmod 755 $W
rm -f $OUT $OUT.position
cd /work/wt/lineage
.venv/bin/provarmor agent --sensor ebpf --out $OUT --duration 300 > $W/agent.log 2>&1 &
AGENT=$!
for i in $(seq 60); do grep -q . $OUT 2>/dev/null && break; sleep 1; done
sleep 12
cp /bin/cat $W/tool
/usr/bin/python3 /tmp/lineage/webshell.py $W/port $W &
WEB=$!
for i in $(seq 50); do [ -s $W/port ] && break; sleep 0.2; done
P=$(cat $W/port)
q() { curl -s -G "http://127.0.0.1:$P/run" --data-urlencode "c=$1" > /dev/null; }
q "cat /etc/shadow > /dev/null"
q "tar czf $W/loot.tgz /etc/ssh /etc/passwd /etc/group"
q "useradd -M pvweb; usermod -aG adm pvweb"
q "apt-get -s install redis-server > /dev/null; cat /etc/shadow > /dev/null"
q "curl -s -o $W/dl-web http://127.0.0.1:$P/f/tool && chmod +x $W/dl-web && $W/dl-web /etc/shadow > /dev/null"
kill $WEB
# a downloaded binary run from a plain root shell (no server above it)
curl -s -o $W/dl http://127.0.0.1:$P/f/tool 2>/dev/null  # server gone: fails, no file
/usr/bin/python3 -m http.server --bind 127.0.0.1 0 --directory $W > $W/http.log 2>&1 &
SRV=$!
for i in $(seq 50); do P2=$(ss -ltnp | grep "pid=$SRV," | sed -E 's/.*127.0.0.1:([0-9]+).*/\1/' | head -1); [ -n "$P2" ] && break; sleep 0.2; done
curl -s -o $W/dl http://127.0.0.1:$P2/tool && chmod +x $W/dl && $W/dl /etc/shadow > /dev/null
kill $SRV
# ProvArmor's own work: a shell in the provarmor.own cgroup doing lab-like set-up
OWN=$(/work/wt/lineage/.venv/bin/python -c "from provarmor.sources.owngroup import *; print(cgroup2_root() / OWN_GROUP)")
# (the work itself starts inside the group: the joining shell only execs it)
CMD="cat /etc/shadow > /dev/null; useradd -M pvown; usermod -aG adm pvown; userdel pvown; rm -f /root/.bash_history.pvown"
CMD=$CMD OWN=$OWN bash -c 'echo $$ > $OWN/cgroup.procs; exec bash -c "$CMD"'
userdel pvweb 2>/dev/null
sleep 4
kill -INT $AGENT; wait $AGENT
echo recorded $(wc -l < $OUT) events
