#!/bin/bash
# Recorded session: a loopback HTTP server, curl in a pipeline, then cp/mv/rm.
export PATH=/usr/bin:/bin
cd /tmp/pa-rec
/usr/bin/python3 -m http.server 8765 --bind 127.0.0.1 --directory www >/dev/null 2>&1 &
srv=$!
sleep 1
curl -s http://127.0.0.1:8765/hello.txt | grep -c hello > count.txt
curl -s -o got.txt http://127.0.0.1:8765/hello.txt
chmod 600 got.txt
cp got.txt copy.txt
mv copy.txt moved.txt
rm moved.txt
kill $srv
wait $srv || true
