#!/bin/sh
# Ordinary admin and developer work on this host, all local, for the rule pack's false-positive
# test. capture.py runs it as: sh benign.sh WORKDIR pa-case-benign (the last argument only marks
# the process tree). Everything it creates lives under WORKDIR, which capture.py removes.
set -eu
work="$1"
cd "$work"
pause() { sleep "${1:-2}"; }

# -- a look at the machine
uptime
df -h /
free -m
hostname
uname -r
pause
ps aux --sort=-%cpu | head -n 5
ls -la /etc/cron.d /etc/systemd/system > /dev/null
tail -n 20 /var/log/dpkg.log > /dev/null 2>&1 || true
journalctl -n 20 --no-pager > /dev/null 2>&1 || true
du -sh /var/cache/apt 2>/dev/null || true
pause 4

# -- package queries
apt-cache policy openssl > /dev/null
apt-cache search --names-only '^python3-req' > /dev/null
apt-cache show curl > /dev/null
apt-get -s install jq > /dev/null 2>&1 || true
dpkg -l | grep -i ssl > /dev/null
dpkg -L coreutils | head -n 5 > /dev/null
pause 4

# -- a small C project built with make, kept in git
mkdir -p src/hello
cd src/hello
cat > hello.c <<'EOF'
#include <stdio.h>
int main(void) { printf("hello\n"); return 0; }
EOF
printf 'CFLAGS = -O2 -Wall\nhello: hello.o\n\t$(CC) $(CFLAGS) -o $@ $^\nclean:\n\trm -f hello hello.o\n.PHONY: clean\n' > Makefile
make
./hello
git init -q .
git config user.email dev@example.invalid
git config user.name Dev
git add hello.c Makefile
git commit -q -m "hello"
pause
sed -i 's/hello\\n/hello, world\\n/' hello.c
git diff --stat
make clean
make
./hello
git commit -q -am "greet the world"
git log --oneline | head -n 3
git checkout -q -b feature
echo '/* TODO: options */' >> hello.c
git commit -q -am "todo"
git checkout -q master 2>/dev/null || git checkout -q main
git merge -q feature
git status --short
cd "$work"
git clone -q src/hello hello-copy
git -C hello-copy log --oneline > /dev/null
pause 20

# -- a python package with its tests
mkdir -p app/mypkg
printf 'def greet(name):\n    return "hello " + name\n' > app/mypkg/__init__.py
printf 'import unittest\nimport mypkg\n\n\nclass T(unittest.TestCase):\n    def test_greet(self):\n        self.assertEqual(mypkg.greet("a"), "hello a")\n' > app/test_mypkg.py
cd app
/usr/bin/python3 -m unittest -q 2>&1
cd "$work"
/usr/bin/python3 -m venv --without-pip venv
venv/bin/python -c 'import sys; print(sys.prefix)'
pause 4

# -- editing files
vim -i NONE -u NONE -es -c '%s/O2/O1/' -c 'wq' src/hello/Makefile
printf 'DEBUG=0\nPORT=18765\n' > app/settings.env
sed -i 's/DEBUG=0/DEBUG=1/' app/settings.env
ed -s app/mypkg/__init__.py <<'EOF'
1i
"""Greetings."""
.
w
q
EOF
cat app/settings.env
pause 4

# -- a local dev server and a request to it
/usr/bin/python3 -m http.server 18765 --bind 127.0.0.1 --directory app > /dev/null 2>&1 &
server=$!
sleep 1.5
curl -s -o page.html http://127.0.0.1:18765/
kill "$server"
wait "$server" || true
pause 4

# -- release artefacts: archives, checksums, a deploy key, a dev certificate
tar czf hello-src.tgz src/hello
tar tzf hello-src.tgz > /dev/null
zip -q -r app.zip app
sha256sum hello-src.tgz app.zip > SHA256SUMS
ssh-keygen -q -t ed25519 -N '' -C deploy@example.invalid -f deploy_key
ssh-keygen -l -f deploy_key.pub
openssl req -x509 -newkey rsa:2048 -nodes -keyout dev-key.pem -out dev-cert.pem -days 1 \
    -subj /CN=dev.local 2>/dev/null
openssl x509 -in dev-cert.pem -noout -subject
pause 20

# -- a second, multi-file C project built in parallel, with a patch applied
mkdir -p calc
cd calc
printf 'int add(int a, int b);\nint mul(int a, int b);\n' > calc.h
printf '#include "calc.h"\nint add(int a, int b) { return a + b; }\n' > add.c
printf '#include "calc.h"\nint mul(int a, int b) { return a * b; }\n' > mul.c
printf '#include <stdio.h>\n#include "calc.h"\nint main(void) { printf("%%d\\n", add(2, mul(3, 4))); return 0; }\n' > main.c
printf 'OBJS = main.o add.o mul.o\ncalc: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c calc.h\n\t$(CC) -O2 -c $<\n' > Makefile
make -j2
./calc
git init -q .
git add .
git -c user.email=dev@example.invalid -c user.name=Dev commit -q -m "calc"
cp mul.c mul.c.orig
sed 's/a \* b/b * a/' mul.c.orig > mul.c.new
diff -u mul.c.orig mul.c.new > mul.patch || true
cp mul.c.orig mul.c
patch -s mul.c < mul.patch
rm -f mul.c.orig mul.c.new mul.patch
make -j2
git -c user.email=dev@example.invalid -c user.name=Dev commit -q -am "commute"
git tag v0.1
git archive --format=tar.gz -o ../calc-0.1.tgz v0.1
git log --stat | head -n 20
git blame add.c > /dev/null
ldd calc > /dev/null
file calc
strings calc | grep -c GLIBC
cd "$work"
mkdir -p extract
tar xzf calc-0.1.tgz -C extract
diff -r extract calc > /dev/null || true
openssl dgst -sha256 calc-0.1.tgz
pause 30

# -- a data-processing script
printf 'name,size\nalpha,3\nbeta,5\ngamma,7\n' > data.csv
printf 'import csv\nimport sys\nrows = list(csv.DictReader(open(sys.argv[1])))\nprint(sum(int(r["size"]) for r in rows))\n' > total.py
/usr/bin/python3 total.py data.csv
cut -d, -f1 data.csv | sort | uniq -c
awk -F, 'NR > 1 { s += $2 } END { print s }' data.csv
pause 4

# -- reading configuration and logs
grep -n '^#\?Port' /etc/ssh/sshd_config || true
cp /etc/ssh/sshd_config sshd_config.review
ls -la /var/log > /dev/null
tail -n 30 /var/log/alternatives.log > /dev/null
journalctl --no-pager -n 50 -p warning > /dev/null 2>&1 || true
dpkg -s openssl | head -n 5
env | sort | head -n 5
printenv PATH
date
df -i / | tail -n 1
ip route
ss -s
pause 30

# -- housekeeping
find . -name '*.o' -newer hello-src.tgz
grep -rn TODO src app || true
crontab -l 2>/dev/null || true
id
ip -br addr
ss -tln
rsync -a src/ src-backup/
rm -rf src-backup hello-copy
cp app/settings.env app/settings.env.bak
rm app/settings.env.bak
chmod 640 app/settings.env
chmod 755 src/hello/hello
ln -s src/hello/hello hello-link
mkdir -p logs
echo started > logs/app.log
gzip logs/app.log
touch SHA256SUMS
ls -la > /dev/null
