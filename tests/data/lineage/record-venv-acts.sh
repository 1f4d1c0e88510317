#!/bin/bash
# usage: record-venv-acts.sh OUT.ndjson   (as root, under flock /tmp/provarmor-live.lock)
#
# A virtual environment in a hidden folder under /tmp made and used by one shell (the
# venv's python and the compiled wheel pip installed into it), a package pip installs into
# a hidden folder then loaded by the system python; then the same python binary and the
# same compiled module downloaded with curl into a hidden folder and run, from a web
# shell and from a plain root shell.
set -u
OUT=$1
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
W=/tmp/pvvenv-rec; rm -rf $W; mkdir -p $W; chmod 755 $W
rm -f $OUT $OUT.position
$REPO/.venv/bin/provarmor agent --sensor ebpf --out $OUT --duration 300 > $W/agent.log 2>&1 &
AGENT=$!
for i in $(seq 60); do grep -q . $OUT 2>/dev/null && break; sleep 1; done
sleep 12
WHEELS=/opt/pypi-more/files
# build/test lineage: this shell makes the environment, pip fills it, this shell runs it
/usr/bin/python3 -m venv $W/.venv
$W/.venv/bin/pip install -q --no-index --find-links $WHEELS ujson > $W/pip.log 2>&1
$W/.venv/bin/python -c 'import ujson; print(ujson.dumps([1]))'
$W/.venv/bin/pip install -q --no-index --find-links $WHEELS --target $W/.deps ujson >> $W/pip.log 2>&1
PYTHONPATH=$W/.deps /usr/bin/python3 -c 'import ujson; print(ujson.dumps([2]))'
# the same binary and module, downloaded into a hidden folder and run
cp /usr/bin/python3.11 $W/python3
cp $W/.deps/ujson.cpython-311-x86_64-linux-gnu.so $W/ujson.so
/usr/bin/python3 $REPO/tests/data/lineage/webshell.py $W/port $W &
WEB=$!
for i in $(seq 50); do [ -s $W/port ] && break; sleep 0.2; done
P=$(cat $W/port)
q() { curl -s -G "http://127.0.0.1:$P/run" --data-urlencode "c=$1" > /dev/null; }
q "mkdir -p $W/.web && curl -s -o $W/.web/python3 http://127.0.0.1:$P/f/python3 && chmod +x $W/.web/python3 && $W/.web/python3 -c pass"
q "curl -s -o $W/.web/ujson.so http://127.0.0.1:$P/f/ujson.so && PYTHONPATH=$W/.web /usr/bin/python3 -c 'import ujson'"
kill $WEB
/usr/bin/python3 -m http.server --bind 127.0.0.1 0 --directory $W > $W/http.log 2>&1 &
SRV=$!
for i in $(seq 50); do P2=$(ss -ltnp | grep "pid=$SRV," | sed -E 's/.*127.0.0.1:([0-9]+).*/\1/' | head -1); [ -n "$P2" ] && break; sleep 0.2; done
mkdir -p $W/.dl
curl -s -o $W/.dl/python3 http://127.0.0.1:$P2/python3 && chmod +x $W/.dl/python3 && $W/.dl/python3 -c pass
curl -s -o $W/.dl/ujson.so http://127.0.0.1:$P2/ujson.so && PYTHONPATH=$W/.dl /usr/bin/python3 -c 'import ujson'
kill $SRV
sleep 4
kill -INT $AGENT; wait $AGENT
rm -rf $W
echo recorded $(wc -l < $OUT) events
