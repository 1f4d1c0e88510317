#!/usr/bin/env bash
# The real-world benign corpus recipe: a stretch of ordinary administration and development
# work on this machine, as a person would do it (see corpus/README.md).
#
#   sudo scripts/corpus/recipe.sh SEED MINUTES [TASK...]
#
# It is NOT a lab workload: nothing here was written with the detection rules in mind, and
# nothing in src/provarmor imports or runs it. scripts/corpus/record.py runs it under the live
# agent and keeps only the events of its process tree.
#
# SEED picks which Debian packages are installed and purged, which variants of each task run,
# their order and the pauses between them; MINUTES is how long it keeps starting tasks.
# TASKs (e.g. ssh_admin, pkg:redis-server) run just those, once, in that order (to try one).
# The administration (packages, backups, accounts, cron, sudoers, the vendor installer, the
# clean-up) is typed by root on an ssh terminal to an sshd of the recipe's own on 127.0.0.1,
# a login session per task; the development work runs in the recipe's own shell.
# Everything it creates carries the prefix "pa-corpus" (users, groups, cron files, /opt,
# /usr/local/bin) or lives under one work directory in /tmp; at exit it stops the servers it
# started, removes the users, cron entries and files, and purges exactly the packages it
# installed. It never removes a package that was installed before it ran.
set -uo pipefail

SEED=${1:?usage: recipe.sh SEED MINUTES}
MINUTES=${2:?usage: recipe.sh SEED MINUTES}
# This project's checkout (record.py runs a copy of this script from elsewhere and says where)
REPO=${PA_CORPUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
# A session's copy (see as_root_on_terminal) shares the work directory and the bookkeeping of
# the recipe that opened the session, and goes on with its random sequence.
INNER=${PA_CORPUS_W:+yes}
RANDOM=${PA_CORPUS_RANDOM:-$SEED}
W=${PA_CORPUS_W:-$(mktemp -d "/tmp/pa-corpus-$SEED-XXXXXX")}
DEADLINE=$(($(date +%s) + $(awk -v m="$MINUTES" "BEGIN { print int(m * 60) }")))
INSTALLED="$W/installed-packages"
PIDS="$W/server-pids"
if [ -z "$INNER" ]; then
    : >"$INSTALLED"
    : >"$PIDS"
fi
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
# Packages this recipe must never remove (the project and its CI need them).
PROTECTED='^(auditd|bpftrace|openssh-.*|postgresql.*|python3.*|chromium.*|iproute2|git|make|gcc.*|curl|sudo|rsync|libc6|bash|coreutils)$'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
pause() { sleep $((RANDOM % ${1:-8} + 2)); }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # PORT: until something listens there (at most 30 s)
    for _ in $(seq 1 60); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.5
    done
    log "nothing listens on $1"
    return 1
}
pick() { # one of the arguments
    local items=("$@")
    printf '%s\n' "${items[RANDOM % ${#items[@]}]}"
}
shuffle() { # the arguments in a seeded random order
    local item
    for item in "$@"; do printf '%05d %s\n' "$RANDOM" "$item"; done | sort -n | cut -d' ' -f2-
}

# ---------------------------------------------------------------- Debian packages
installed_now() { dpkg-query -W -f '${Package} ${db:Status-Status}\n' 2>/dev/null | awk '$2 == "installed" {print $1}' | sort; }

apt_install() { # PACKAGE...: install, remembering exactly what this recipe added
    local planned before after
    planned=$("${APT[@]}" install -s "$@" 2>/dev/null | awk '/^Inst /{print $2}' | sort)
    before=$(installed_now)
    log "apt-get install $*"
    "${APT[@]}" install "$@" || log "apt-get install $* failed"
    after=$(installed_now)
    comm -13 <(echo "$before") <(echo "$after") | comm -12 - <(echo "$planned") >>"$INSTALLED"
}

apt_purge_all() { # purge what this recipe installed (never a protected package)
    local packages
    packages=$(sort -u "$INSTALLED" | grep -Ev "$PROTECTED" | tr '\n' ' ')
    [ -n "${packages// /}" ] || return 0
    log "apt-get purge $packages"
    # shellcheck disable=SC2086
    "${APT[@]}" purge $packages || log "apt-get purge failed"
    : >"$INSTALLED"
}

remember_pid() { [ -n "${1:-}" ] && echo "$1" >>"$PIDS"; }

use_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$W" \
        --pidfile "$W/redis.pid" --logfile "$W/redis.log"
    wait_port "$port" || return 0
    remember_pid "$(cat "$W/redis.pid" 2>/dev/null)"
    redis-cli -p "$port" ping
    redis-cli -p "$port" set deploy:last "$(date +%s)" >/dev/null
    redis-cli -p "$port" incr deploy:count >/dev/null
    redis-cli -p "$port" info server | head -5
    pause 4
    redis-cli -p "$port" shutdown nosave || true
}

use_nginx() {
    local port
    port=$(free_port)
    mkdir -p "$W/nginx/html" "$W/nginx/logs"
    echo "<h1>corpus $SEED</h1>" >"$W/nginx/html/index.html"
    cat >"$W/nginx/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log $W/nginx/logs/access.log;
    server { listen 127.0.0.1:$port; root $W/nginx/html; }
}
EOF
    chmod -R o+rX "$W/nginx"
    chmod o+x "$W"
    nginx -t -c "$W/nginx/nginx.conf" -p "$W/nginx"
    nginx -c "$W/nginx/nginx.conf" -p "$W/nginx"
    wait_port "$port" || return 0
    remember_pid "$(cat "$W/nginx/nginx.pid" 2>/dev/null)"
    curl -fsS "http://127.0.0.1:$port/" && curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/missing"
    pause 4
    nginx -s quit -c "$W/nginx/nginx.conf" -p "$W/nginx" || true
    tail -n 3 "$W/nginx/logs/access.log"
}

use_apache2() {
    local port
    port=$(free_port)
    sed -i "s/^Listen 80\$/Listen 127.0.0.1:$port/; /Listen 443/d" /etc/apache2/ports.conf
    sed -i "s/<VirtualHost \*:80>/<VirtualHost 127.0.0.1:$port>/" /etc/apache2/sites-available/000-default.conf
    a2enmod -q headers
    apache2ctl configtest
    apache2ctl start
    wait_port "$port" || return 0
    curl -fsS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/"
    pause 4
    apache2ctl stop
    sleep 2
}

use_mariadb() {
    local port
    port=$(free_port)
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    mysqld_safe --port="$port" --bind-address=127.0.0.1 --skip-networking=0 >"$W/mysqld_safe.log" 2>&1 &
    remember_pid $!
    wait_port "$port" || return 0
    mysql -e "CREATE DATABASE IF NOT EXISTS corpus_app; CREATE TABLE IF NOT EXISTS corpus_app.deploys (id INT PRIMARY KEY AUTO_INCREMENT, at DATETIME); INSERT INTO corpus_app.deploys (at) VALUES (NOW());"
    mysql -e "SELECT COUNT(*) FROM corpus_app.deploys; SHOW DATABASES;"
    mysqldump corpus_app | gzip >"$W/corpus_app.sql.gz"
    pause 4
    mysqladmin shutdown || true
    sleep 2
}

use_memcached() {
    local port
    port=$(free_port)
    memcached -u memcache -l 127.0.0.1 -p "$port" &
    local server=$!
    remember_pid "$server"
    wait_port "$port" || return 0
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'set corpus 0 60 5\r\nhello\r\nget corpus\r\nstats\r\nquit\r\n' >&3
    timeout 5 cat <&3 | head -5
    exec 3>&-
}

use_postfix() {
    postconf -n | head -5
    postfix check || true
    postfix start || true
    printf 'Subject: corpus %s\n\nnightly report\n' "$SEED" | sendmail root || true
    sleep 3
    mailq || true
    postfix stop || true
}

use_cron_daemon() {
    cron -L 0 || true
    sleep 2
    remember_pid "$(cat /run/crond.pid 2>/dev/null)"
}

use_lighttpd() {
    local port
    port=$(free_port)
    mkdir -p "$W/lighttpd"
    echo ok >"$W/lighttpd/index.html"
    chmod -R o+rX "$W/lighttpd"
    chmod o+x "$W"
    cat >"$W/lighttpd/lighttpd.conf" <<EOF
server.document-root = "$W/lighttpd"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$W/lighttpd/lighttpd.pid"
server.username = "www-data"
server.groupname = "www-data"
index-file.names = ("index.html")
EOF
    lighttpd -t -f "$W/lighttpd/lighttpd.conf"
    lighttpd -f "$W/lighttpd/lighttpd.conf"
    wait_port "$port" || return 0
    remember_pid "$(cat "$W/lighttpd/lighttpd.pid" 2>/dev/null)"
    curl -fsS "http://127.0.0.1:$port/"
    pause 3
    kill "$(cat "$W/lighttpd/lighttpd.pid")" 2>/dev/null || true
}

use_mosquitto() {
    local port
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$W/mosquitto.conf"
    chmod 644 "$W/mosquitto.conf" && chmod o+x "$W"
    mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
    local broker=$!
    remember_pid "$broker"
    wait_port "$port" || return 0
    timeout 10 mosquitto_sub -p "$port" -t corpus/# -C 1 -v &
    sleep 1
    mosquitto_pub -p "$port" -t corpus/deploy -m "seed $SEED"
    sleep 2
    kill "$broker" 2>/dev/null || true
}

use_haproxy() {
    local port backend
    port=$(free_port)
    backend=$(free_port)
    cat >"$W/haproxy.cfg" <<EOF
global
    pidfile $W/haproxy.pid
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:$port
    default_backend app
backend app
    server app1 127.0.0.1:$backend
EOF
    haproxy -c -f "$W/haproxy.cfg"
    haproxy -D -f "$W/haproxy.cfg"
    wait_port "$port" || return 0
    remember_pid "$(cat "$W/haproxy.pid" 2>/dev/null)"
    curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/" || true
    kill "$(cat "$W/haproxy.pid")" 2>/dev/null || true
}

use_at() {
    atd || true
    sleep 1
    echo "date > $W/at-ran" | at now + 1 minute 2>&1 || true
    atq || true
    atq | awk '{print $1}' | xargs -r atrm
    remember_pid "$(cat /run/atd.pid 2>/dev/null)"
}

use_sysstat() { sar -V || true; iostat 1 2 || true; mpstat 1 1 || true; }
use_dovecot() { doveconf -n | head -5 || true; ls -l /etc/dovecot/private 2>/dev/null || true; }
use_bind9() { named-checkconf && named -V | head -2; rndc-confgen -a -c "$W/rndc.key" && ls -l "$W/rndc.key"; }
use_snmpd() { snmpd -v | head -3 || true; }
use_unbound() { unbound-checkconf || true; unbound-control-setup -d "$W/unbound" >/dev/null 2>&1 || true; }
use_tftpd() { in.tftpd -V 2>&1 | head -1 || true; }
use_vsftpd() { vsftpd -v 0>&- 2>&1 | head -1 || true; }

package_task() { # NAME: install, use, purge one package
    local name=$1
    case $name in
        postfix)
            echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
            echo "postfix postfix/mailname string corpus.localdomain" | debconf-set-selections
            apt_install postfix mailutils ;;
        mosquitto) apt_install mosquitto mosquitto-clients ;;
        mariadb) apt_install mariadb-server ;;
        bind9) apt_install bind9 ;;
        dovecot) apt_install dovecot-core ;;
        tftpd) apt_install tftpd-hpa ;;
        cron_daemon) apt_install cron ;;
        *) apt_install "$name" ;;
    esac
    pause 5
    case $name in
        redis-server) use_redis ;; nginx) use_nginx ;; apache2) use_apache2 ;;
        mariadb) use_mariadb ;; memcached) use_memcached ;; postfix) use_postfix ;;
        cron_daemon) use_cron_daemon ;; lighttpd) use_lighttpd ;; mosquitto) use_mosquitto ;;
        haproxy) use_haproxy ;; at) use_at ;; sysstat) use_sysstat ;; dovecot) use_dovecot ;;
        bind9) use_bind9 ;; snmpd) use_snmpd ;; unbound) use_unbound ;; tftpd) use_tftpd ;;
        vsftpd) use_vsftpd ;;
    esac
    pause 6
    [ "$name" = cron_daemon ] && return 0 # cron stays for the cron edits; purged at exit
    stop_servers
    apt_purge_all
}

task_nginx_upgrade() { # an older nginx from the local package cache, then apt upgrades it
    local old common
    old=$(ls /var/cache/apt/archives/nginx_1.22.1-9+deb12u10_amd64.deb 2>/dev/null)
    common=$(ls /var/cache/apt/archives/nginx-common_1.22.1-9+deb12u10_all.deb 2>/dev/null)
    if [ -z "$old" ] || [ -z "$common" ] || dpkg -s nginx >/dev/null 2>&1; then
        package_task nginx
        return
    fi
    log "dpkg -i nginx 1.22.1-9+deb12u10, then apt-get upgrade nginx"
    echo nginx >>"$INSTALLED"
    echo nginx-common >>"$INSTALLED"
    dpkg -i "$common" "$old" || "${APT[@]}" install -f
    dpkg -l nginx | tail -1
    pause 5
    "${APT[@]}" install --only-upgrade nginx nginx-common
    dpkg -l nginx | tail -1
    use_nginx
    pause 4
    apt_purge_all
}

task_reinstall_sshd() { "${APT[@]}" install --reinstall openssh-server; }
task_apt_update() { "${APT[@]}" update || true; apt list --upgradable 2>/dev/null | head -5; }

# ---------------------------------------------------------------- developer work
task_pip_source_build() {
    local venv="$W/venv-$RANDOM" sdist
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    sdist=$(pick markupsafe simplejson "markupsafe simplejson" wrapt)
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --no-binary "${sdist// /,}" $sdist
    "$venv/bin/pip" install -q $(pick requests "requests rich" "click pyyaml" attrs)
    "$venv/bin/python" -c "import markupsafe, sys; print(sys.version)" 2>/dev/null || true
    "$venv/bin/pip" list --format=freeze | head -20
    find "$venv" -name '*.so' | head -5
    pause 4
    rm -rf "$venv"
}

task_unit_tests() { # a clone of this project, its unit tests (never its lab or live tests)
    local clone="$W/provarmor-$RANDOM" suites
    git clone -q "$REPO" "$clone"
    suites=$(pick "tests/provarmor/model" "tests/provarmor/graph" "tests/provarmor/detection" \
        "tests/provarmor/model tests/provarmor/graph" "tests/provarmor/investigation")
    log "pytest $suites"
    # shellcheck disable=SC2086
    (cd "$clone" && PYTHONPATH="$clone/src" timeout 300 "$REPO/.venv/bin/python" -m pytest -q -x \
        -p no:cacheprovider $suites 2>&1 | tail -3)
    rm -rf "$clone"
}

task_make_build() {
    local src="$W/build-$RANDOM"
    mkdir -p "$src/src" "$src/include"
    cat >"$src/include/stats.h" <<'EOF'
#pragma once
#include <stddef.h>
double mean(const double *values, size_t n);
double variance(const double *values, size_t n);
EOF
    cat >"$src/src/stats.c" <<'EOF'
#include "stats.h"
double mean(const double *values, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += values[i];
    return n ? sum / n : 0;
}
double variance(const double *values, size_t n) {
    double m = mean(values, n), sum = 0;
    for (size_t i = 0; i < n; i++) sum += (values[i] - m) * (values[i] - m);
    return n > 1 ? sum / (n - 1) : 0;
}
EOF
    cat >"$src/src/main.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include "stats.h"
int main(int argc, char **argv) {
    double values[64];
    size_t n = 0;
    for (int i = 1; i < argc && n < 64; i++) values[n++] = strtod(argv[i], NULL);
    printf("n=%zu mean=%.3f variance=%.3f\n", n, mean(values, n), variance(values, n));
    return 0;
}
EOF
    cat >"$src/Makefile" <<'EOF'
CFLAGS ?= -O2 -Wall -Wextra -Iinclude
all: bin/stats
build/%.o: src/%.c include/stats.h
	@mkdir -p build
	$(CC) $(CFLAGS) -c $< -o $@
build/libstats.a: build/stats.o
	$(AR) rcs $@ $^
bin/stats: build/main.o build/libstats.a
	@mkdir -p bin
	$(CC) -o $@ build/main.o -Lbuild -lstats
check: bin/stats
	./bin/stats 1 2 3 4 | grep -q 'mean=2.500'
install: bin/stats
	install -D -m 755 bin/stats $(DESTDIR)/usr/local/bin/stats
clean:
	rm -rf build bin
.PHONY: all check install clean
EOF
    make -C "$src" -j2
    make -C "$src" check && log "make check ok"
    make -C "$src" install DESTDIR="$src/stage"
    make -C "$src" clean
    make -C "$src" CFLAGS="-O0 -g -Wall -Iinclude"
    rm -rf "$src"
}

task_git_work() {
    local origin="$W/origin-$RANDOM.git" work="$W/work-$RANDOM" other="$W/other-$RANDOM"
    git init -q --bare "$origin"
    git clone -q "$origin" "$work" 2>/dev/null
    cd "$work" || return
    git config user.email dev@corpus.localdomain
    git config user.name "Corpus Developer"
    printf '# service\n' >README.md
    printf 'deploy:\n\tinstall -m 755 run.sh /usr/local/bin/\n' >Makefile
    git add . && git commit -q -m "Initial layout"
    git checkout -q -b "feature/$(pick retry timeout logging metrics)"
    printf '#!/bin/sh\necho run\n' >run.sh && chmod +x run.sh
    git add run.sh && git commit -q -m "Add the run script"
    git log --oneline --graph | head
    git checkout -q - && git merge -q --no-ff -m "Merge feature" "@{-1}"
    git tag -a v0.1 -m "first release"
    git push -q origin --all && git push -q origin --tags
    git clone -q "$origin" "$other" && git -C "$other" log --oneline | head -3
    git clone -q --depth 5 "file://$REPO" "$W/provarmor-shallow" && git -C "$W/provarmor-shallow" log --oneline | head -3
    git gc -q
    cd "$W" || return
    rm -rf "$origin" "$work" "$other" "$W/provarmor-shallow"
}

# ---------------------------------------------------------------- administration
task_etc_backup() {
    local stamp
    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$W/backups"
    case $(pick full ssh accounts) in
        full) tar czf "$W/backups/etc-$stamp.tgz" -C / etc 2>/dev/null || true ;;
        ssh) tar czf "$W/backups/ssh-$stamp.tgz" /etc/ssh /etc/passwd /etc/group /etc/hosts 2>/dev/null || true ;;
        accounts) tar czf "$W/backups/accounts-$stamp.tgz" /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/sudoers /etc/sudoers.d 2>/dev/null || true ;;
    esac
    tar tzf "$W"/backups/*-"$stamp".tgz | wc -l
    rsync -a --delete /etc/ "$W/backups/etc-mirror/" 2>/dev/null || true
    rsync -ai --dry-run /etc/ssh/ "$W/backups/etc-mirror/ssh/" | head -5
    (cd "$W/backups/etc-mirror" && find ssh -type f | xargs -r sha256sum | head -5)
    pause 4
    rm -rf "$W/backups"
}

task_users() {
    local group=pa-corpus-ops user=pa-corpus-dev$((RANDOM % 90 + 10))
    getent group "$group" >/dev/null || groupadd "$group"
    useradd -m -s /bin/bash -G "$group" -c "Corpus developer" "$user"
    echo "$user:Corpus-$RANDOM-pass" | chpasswd
    chage -M 90 -W 7 "$user"
    chage -l "$user"
    passwd -S "$user"
    usermod -aG "$(pick adm users "$group")" "$user"
    id "$user"
    pause 4
    usermod -L "$user" && usermod -U "$user"
    getent passwd "$user"
    userdel -r "$user" 2>/dev/null
    groupdel "$group" 2>/dev/null || true
}

task_cron_edits() {
    local had=yes
    hash -r # cron may have been purged since crontab was last run
    command -v crontab >/dev/null || package_task cron_daemon
    command -v crontab >/dev/null || return 0
    crontab -l 2>/dev/null || { log "no crontab for root"; had=no; }
    (crontab -l 2>/dev/null; echo "# nightly jobs # pa-corpus") | crontab -
    # crontab -e with a scripted editor (it waits a second: crontab sees no change within one)
    printf '#!/bin/sh\nsleep 1\nsed -i "$1" "$2"\n' >"$W/edit"
    chmod 755 "$W/edit"
    EDITOR="$W/edit '\$a 17 3 * * * tar czf /tmp/pa-corpus-nightly.tgz /etc/hosts # pa-corpus'" crontab -e
    crontab -l
    printf 'SHELL=/bin/sh\n*/5 * * * * root test -d %s && date >> %s/cron-heartbeat\n' "$W" "$W" \
        >/etc/cron.d/pa-corpus
    chmod 644 /etc/cron.d/pa-corpus
    pause 5
    EDITOR="$W/edit '/# pa-corpus\$/d'" crontab -e
    crontab -l 2>/dev/null || true
    [ "$had" = yes ] || crontab -r
    rm -f /etc/cron.d/pa-corpus
}

task_ssh_admin() { # an admin session over ssh with a terminal, with sudo
    local user=pa-corpus-admin port dir="$W/ssh"
    mkdir -p "$dir"
    port=$(free_port)
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id_admin" -C "admin@corpus"
    known_host "$port" "$dir/host_key.pub" >"$dir/known_hosts"
    if ! id "$user" >/dev/null 2>&1; then
        rm -rf "/home/$user" # left by an interrupted run: its owner no longer exists
        useradd -m -s /bin/bash "$user"
    fi
    echo "$user:Corpus-$RANDOM-admin" | chpasswd
    install -d -m 700 -o "$user" -g "$user" "/home/$user/.ssh"
    install -m 600 -o "$user" -g "$user" "$dir/id_admin.pub" "/home/$user/.ssh/authorized_keys"
    echo "$user ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/pa-corpus-admin
    chmod 440 /etc/sudoers.d/pa-corpus-admin
    cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
UsePAM yes
PasswordAuthentication no
EOF
    /usr/sbin/sshd -t -f "$dir/sshd_config" && /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    wait_port "$port" || return 0
    remember_pid "$(cat "$dir/sshd.pid" 2>/dev/null)"
    { # typed like a person: sudo discards type-ahead
        for line in "uptime; df -h / | tail -1" \
            "$(pick 'sudo -n tail -n 5 /var/log/dpkg.log' 'sudo -n ss -tlnp | head -5' 'sudo -n du -sh /var/cache/apt')" \
            "sudo -n grep -c . /etc/passwd" \
            "$(pick 'sudo -n ls -la /etc/ssh' 'sudo -n cat /etc/hostname' 'sudo -n ps -ef | wc -l')" \
            "ls -la ~; history | tail -3" "exit"; do
            sleep $((RANDOM % 3 + 2))
            echo "$line"
        done
    } | timeout 120 ssh -tt -p "$port" -i "$dir/id_admin" -o UserKnownHostsFile="$dir/known_hosts" \
        "$user@127.0.0.1"
    pause 3
    kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
    rm -f /etc/sudoers.d/pa-corpus-admin
    userdel -r "$user" 2>/dev/null || true
    rm -rf "$dir"
}

task_root_terminal() { # the administration tasks, one after the other, in one root session
    as_root_on_terminal etc_backup users cron_edits ssh_admin inspect
}

task_vendor_installer() { # curl ... | bash from a loopback mirror
    local mirror="$W/mirror" port pkg="$W/vendor-pkg"
    mkdir -p "$mirror" "$pkg/pa-corpus-vendor/bin"
    port=$(free_port)
    printf '#include <stdio.h>\nint main(int c, char **v) { (void)c; (void)v; puts("vendorctl 2.4.1"); return 0; }\n' >"$pkg/vendorctl.c"
    cc -O2 -o "$pkg/pa-corpus-vendor/bin/vendorctl" "$pkg/vendorctl.c"
    printf '#!/bin/sh\nexec /opt/pa-corpus-vendor/bin/vendorctl "$@"\n' >"$pkg/pa-corpus-vendor/bin/vendor"
    chmod +x "$pkg/pa-corpus-vendor/bin/vendor"
    tar czf "$mirror/vendor-2.4.1-linux-$(uname -m).tar.gz" -C "$pkg" pa-corpus-vendor
    (cd "$mirror" && sha256sum vendor-*.tar.gz >SHA256SUMS)
    cat >"$mirror/install.sh" <<EOF
#!/bin/sh
set -eu
BASE=http://127.0.0.1:$port
ARCH=\$(uname -m)
TMP=\$(mktemp -d)
echo "Installing vendor 2.4.1 for \$ARCH"
curl -fsSL "\$BASE/vendor-2.4.1-linux-\$ARCH.tar.gz" -o "\$TMP/vendor.tar.gz"
curl -fsSL "\$BASE/SHA256SUMS" -o "\$TMP/SHA256SUMS"
(cd "\$TMP" && sed "s/vendor-2.4.1-linux-\$ARCH.tar.gz/vendor.tar.gz/" SHA256SUMS | sha256sum -c -)
rm -rf /opt/pa-corpus-vendor
tar xzf "\$TMP/vendor.tar.gz" -C /opt
ln -sf /opt/pa-corpus-vendor/bin/vendor /usr/local/bin/pa-corpus-vendor
rm -rf "\$TMP"
pa-corpus-vendor --version
EOF
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$mirror" >"$W/mirror.log" 2>&1 &
    local server=$!
    remember_pid "$server"
    wait_port "$port" || return 0
    curl -fsSL "http://127.0.0.1:$port/install.sh" | bash
    pause 4
    pa-corpus-vendor status 2>/dev/null || true
    rm -rf /opt/pa-corpus-vendor /usr/local/bin/pa-corpus-vendor
    kill "$server" 2>/dev/null || true
    rm -rf "$mirror" "$pkg"
}

task_inspect() { # what an admin looks at between tasks
    case $(pick logs disk processes network) in
        logs) tail -n 20 /var/log/dpkg.log 2>/dev/null | cut -c1-80; ls -la /var/log | head ;;
        disk) df -h; du -sh /var/cache/apt /var/lib/dpkg 2>/dev/null ;;
        processes) ps aux --sort=-%cpu | head -8; uptime ;;
        network) ss -tln | head; ip -brief address ;;
    esac
}

# ---------------------------------------------------------------- root's terminal
# Administration (packages, /etc backups, accounts, cron, sudoers, the vendor installer, the
# clean-up) is typed by root in a login shell on an ssh terminal, as an admin logged in as
# root does it: the recipe runs an sshd of its own on 127.0.0.1 for that, and each task is a
# session of its own (a copy of this script, run with the task's name). Development work (pip,
# unit tests, make, git) runs in the recipe's own shell.
ADMIN_TASKS=" etc_backup users cron_edits ssh_admin inspect vendor_installer reinstall_sshd admin_cleanup "
ROOT_SSH="$W/root-ssh"

known_host() { # PORT HOST_KEY_PUB: the known_hosts line of a server on 127.0.0.1
    printf '[127.0.0.1]:%s %s\n' "$1" "$(cut -d' ' -f1,2 "$2")"
}

start_root_sshd() {
    local port
    mkdir -p "$ROOT_SSH"
    port=$(free_port)
    ssh-keygen -q -t ed25519 -N '' -f "$ROOT_SSH/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$ROOT_SSH/id_root" -C "root@corpus"
    install -m 600 "$ROOT_SSH/id_root.pub" "$ROOT_SSH/authorized_keys"
    known_host "$port" "$ROOT_SSH/host_key.pub" >"$ROOT_SSH/known_hosts"
    printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $ROOT_SSH/host_key" \
        "PidFile $ROOT_SSH/sshd.pid" "UsePAM yes" "PasswordAuthentication no" \
        "PermitRootLogin prohibit-password" "AuthorizedKeysFile $ROOT_SSH/authorized_keys" \
        "StrictModes no" >"$ROOT_SSH/sshd_config"
    /usr/sbin/sshd -t -f "$ROOT_SSH/sshd_config" &&
        /usr/sbin/sshd -f "$ROOT_SSH/sshd_config" -E "$ROOT_SSH/sshd.log" || return 1
    wait_port "$port" || return 1
    echo "$port" >"$ROOT_SSH/port"
}

stop_root_sshd() { kill "$(cat "$ROOT_SSH/sshd.pid" 2>/dev/null)" 2>/dev/null || true; }

as_root_on_terminal() { # TASK...: root logs in over ssh with a terminal and runs them
    local port
    port=$(cat "$ROOT_SSH/port" 2>/dev/null) || return 255
    { # the session ends when the work does (nothing typed ahead is left for it to read)
        sleep 2
        echo "PA_CORPUS_W=$W PA_CORPUS_RANDOM=$RANDOM bash $SELF $SEED 0 $* </dev/null; exit"
    } | timeout 900 ssh -tt -p "$port" -i "$ROOT_SSH/id_root" \
        -o UserKnownHostsFile="$ROOT_SSH/known_hosts" root@127.0.0.1
}

# ---------------------------------------------------------------- the session
stop_servers() { # the servers this recipe started, until they are gone (at most 15 s)
    local pid
    while read -r pid; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    done <"$PIDS"
    : >"$PIDS"
}

task_admin_cleanup() { # what the tasks left: servers, files, accounts, installed packages
    cd / || true
    stop_servers
    # root's crontab is rewritten only when an entry of ours is left (cron_edits removes its own)
    if command -v crontab >/dev/null &&
        [ "$(crontab -l 2>/dev/null | grep -c '# pa-corpus$')" -gt 0 ]; then
        crontab -l 2>/dev/null | grep -v '# pa-corpus$' | crontab - 2>/dev/null || true
    fi
    rm -f /etc/cron.d/pa-corpus /etc/sudoers.d/pa-corpus-admin /usr/local/bin/pa-corpus-vendor
    rm -rf /opt/pa-corpus-vendor
    getent passwd | cut -d: -f1 | grep '^pa-corpus' | xargs -r -n1 userdel -r 2>/dev/null
    getent group | cut -d: -f1 | grep '^pa-corpus' | xargs -r -n1 groupdel 2>/dev/null
    apt_purge_all
}

cleanup() { # on root's terminal too; here only when no session could be opened
    log "cleanup"
    cd / || true
    as_root_on_terminal admin_cleanup
    [ $? -ne 255 ] || task_admin_cleanup
    stop_root_sshd
    rm -rf "$W"
    log "done"
}

PACKAGES=(redis-server nginx apache2 mariadb memcached postfix cron_daemon lighttpd mosquitto
    haproxy at sysstat dovecot bind9 snmpd unbound tftpd vsftpd)
OTHER=(pip_source_build unit_tests make_build git_work etc_backup users cron_edits ssh_admin
    vendor_installer inspect reinstall_sshd)

run_step() {
    log "== $1"
    if [ -z "$INNER" ] && [[ $ADMIN_TASKS == *" $1 "* || $1 == pkg:* ]]; then
        as_root_on_terminal "$1"
        log "== $1 done (root session exited $?)"
        return
    fi
    case $1 in
        pkg:nginx_upgrade) task_nginx_upgrade ;;
        pkg:apt_update) task_apt_update ;;
        pkg:*) package_task "${1#pkg:}" ;;
        *) "task_$1" ;;
    esac
    log "== $1 done"
}

if [ -n "$INNER" ]; then # a session's copy: the tasks it was given, no clean-up of its own
    trap 'exit 130' INT TERM
    for step in "${@:3}"; do run_step "$step"; done
    exit 0
fi
log "recipe seed $SEED for $MINUTES minutes in $W"
trap cleanup EXIT
trap 'exit 130' INT TERM
start_root_sshd || { log "the root sshd did not start"; exit 1; }
if [ $# -gt 2 ]; then
    for step in "${@:3}"; do run_step "$step"; done
    exit 0
fi
round=0
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    round=$((round + 1))
    mapfile -t chosen < <(shuffle "${PACKAGES[@]}" | head -n 6)
    [ $round -eq 1 ] && [ $((RANDOM % 2)) -eq 0 ] && chosen+=(nginx_upgrade)
    [ $round -eq 1 ] && chosen+=(apt_update)
    mapfile -t plan < <(shuffle "${chosen[@]/#/pkg:}" "${OTHER[@]}")
    for step in "${plan[@]}"; do
        [ "$(date +%s)" -lt "$DEADLINE" ] || break
        run_step "$step"
        pause "$(pick 6 10 20)"
    done
done
