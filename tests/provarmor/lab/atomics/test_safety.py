import pytest

from provarmor.lab.atomics.areas import Areas
from provarmor.lab.atomics.hazards import Hazard
from provarmor.lab.atomics.identities import created_identities
from provarmor.lab.atomics.safety import screen


def _hazards(text, **options):
    return {finding.hazard for finding in screen(text, **options)}


@pytest.mark.parametrize(
    ("text", "hazard"),
    [
        ("shutdown -r now", Hazard.POWER),
        ("sudo reboot", Hazard.POWER),
        ("halt --reboot", Hazard.POWER),
        ("poweroff -r 3", Hazard.POWER),
        ("init 0", Hazard.POWER),
        ("init 6", Hazard.POWER),
        ("systemctl --no-wall reboot", Hazard.POWER),
        ("systemctl poweroff", Hazard.POWER),
        ('echo "b" > /proc/sysrq-trigger', Hazard.POWER),
        (":(){ :|:& };:", Hazard.FORK_BOMB),
        ("bomb() { bomb | bomb & }; bomb", Hazard.FORK_BOMB),
        ("perl -e 'fork while fork'", Hazard.FORK_BOMB),
        ("yes > /dev/null", Hazard.ENDLESS),
        ("eval '(while true; do :; done) &'", Hazard.ENDLESS),
        ("rm -rf / --no-preserve-root", Hazard.DELETE),
        ("rm -rf /*", Hazard.DELETE),
        ("sudo rm -rf /home/someone", Hazard.DELETE),
        ("cd /etc && rm -f hosts.allow", Hazard.DELETE),
        ("find / -name x -exec rm {} \\;", Hazard.DELETE),
        ("find /etc -delete", Hazard.DELETE),
        ("ls /etc | xargs rm", Hazard.DELETE),
        ('rm -rf "$DIR"/', Hazard.DELETE),
        ("mkfs.ext4 /dev/sdb1", Hazard.BLOCK_DEVICE),
        ("dd if=/dev/zero of=/dev/sda bs=1M", Hazard.BLOCK_DEVICE),
        ("cat x > /dev/nvme0n1", Hazard.BLOCK_DEVICE),
        ("kill -9 -1", Hazard.KILL),
        ("kill -63 1", Hazard.KILL),
        ("killall -SIGTERM cron", Hazard.KILL),
        ("sudo pkill -9 sshd", Hazard.KILL),
        ("kill -SIGTERM $(pgrep cron)", Hazard.KILL),
        ("iptables -F", Hazard.FIREWALL),
        ("iptables -P INPUT ACCEPT", Hazard.FIREWALL),
        ("ufw disable", Hazard.FIREWALL),
        ("nft flush ruleset", Hazard.FIREWALL),
        ("iptables-restore < /tmp/iptables.rules", Hazard.FIREWALL),
        ("swapoff -a", Hazard.SWAP),
        ("sudo insmod /tmp/rootkit.ko", Hazard.KERNEL_MODULE),
        ("modprobe diamorphine", Hazard.KERNEL_MODULE),
        ("sysctl -w kernel.randomize_va_space=0", Hazard.KERNEL_SETTING),
        ("echo 3 > /proc/sys/vm/drop_caches", Hazard.KERNEL_SETTING),
        ("setenforce 0", Hazard.KERNEL_SETTING),
        ("passwd", Hazard.ACCOUNTS),
        ("echo 'root:x' | chpasswd", Hazard.ACCOUNTS),
        ("usermod --password x nobody", Hazard.ACCOUNTS),
        ("chsh --shell /bin/bash nobody", Hazard.ACCOUNTS),
        ("userdel -r cloudsdk", Hazard.ACCOUNTS),
        ("echo 'x::0:0::/:/bin/sh' >> /etc/passwd", Hazard.ACCOUNTS),
        ("useradd -g 0 -M -d /root -s /bin/bash butter", Hazard.ACCOUNTS),
        ("useradd -o -u 0 toor", Hazard.ACCOUNTS),
        ("echo 'PermitRootLogin yes' >> /etc/ssh/sshd_config", Hazard.SSHD),
        ("sed -i s/no/yes/ /etc/ssh/sshd_config", Hazard.SSHD),
        ("auditctl -D", Hazard.LOGGING),
        ("auditctl -e 0", Hazard.LOGGING),
        ("auditctl -a always,exit -F arch=b64 -S execve -k CMDS", Hazard.LOGGING),
        ("rm -rf /var/log/messages", Hazard.LOGGING),
        ("echo 0> /var/log/secure", Hazard.LOGGING),
        ("journalctl --vacuum-time=0", Hazard.LOGGING),
        ("grep -ri password /", Hazard.LOGGING),
        ("systemctl stop rsyslog", Hazard.SERVICES),
        ("sudo systemctl disable auditd", Hazard.SERVICES),
        ("service cron stop", Hazard.SERVICES),
        ("systemctl enable art.timer", Hazard.SERVICES),
        ("systemd-run --unit=x --on-calendar '*:0/1' /bin/sh -c id", Hazard.SERVICES),
        ('echo "id" | at now + 1 minute', Hazard.SERVICES),
        ("echo 'x' > /etc/cron.weekly/persistevil", Hazard.WRITE),
        ("echo /tmp/x.so > /etc/ld.so.preload", Hazard.PRELOAD),
        ("date 010100001971", Hazard.CLOCK),
        ('date -s "2020-01-01"', Hazard.CLOCK),
        ("timedatectl set-time 10:00", Hazard.CLOCK),
        ("mount -B /proc/1 /proc/2", Hazard.MOUNT),
        ("umount /mnt", Hazard.MOUNT),
        ("apt-get install -y nmap", Hazard.PACKAGES),
        ("pip install requests", Hazard.PACKAGES),
        ("sudo update-ca-certificates", Hazard.TRUST_STORE),
        ("echo x >> /etc/pam.d/su-l", Hazard.WRITE),
        ("sudo vim /etc/sudoers", Hazard.WRITE),
        ("sudo sh -c 'echo x > /etc/motd'", Hazard.WRITE),
        ("su -c 'rm -rf /opt' art", Hazard.DELETE),
        ("trap 'rm -rf /srv' EXIT", Hazard.DELETE),
        ("echo 'unclosed", Hazard.UNREADABLE),
    ],
)
def test_hostile_commands_are_refused(text, hazard):
    assert hazard in _hazards(text), screen(text)


@pytest.mark.parametrize(
    "text",
    [
        "cat /etc/passwd > /tmp/T1087.001.txt\ncat /tmp/T1087.001.txt",
        "sudo cat /etc/shadow > /var/lib/provarmor/lab/atomics/r/T/tmp/out",
        "echo '#!/bin/sh' > /tmp/image.png\nsh /tmp/image.png\nrm -f /tmp/image.png",
        "echo '* * * * * root id' > /etc/cron.d/persistevil\nrm /etc/cron.d/persistevil -f",
        "crontab -l > /tmp/notevil; echo '* * * * * /tmp/evil.sh' > /tmp/p && crontab /tmp/p",
        "echo '# hi' >> /etc/profile",
        "echo x >> ~/.bash_profile; ln -sf /dev/null ~/.bash_history; history -c",
        "mkdir /var/tmp/.hidden-directory; rm -rf /var/tmp/.hidden-directory/",
        "TMPFILE=$(mktemp)\necho id > $TMPFILE\nbash $TMPFILE",
        "rm $TMPFILE\nunset TMPFILE",
        "kill $PID; kill -SIGINT $$; kill -31 $TARGETPID",
        "useradd --create-home --shell /bin/bash art\nusermod --lock art\nuserdel -r art",
        "ps aux | grep -v grep; ss -antp; ip addr; netstat -ant",
        "find / -name id_rsa 2>/dev/null -exec cp --parents {} /tmp/art-staging \\;",
        "systemctl --type=service; systemctl status cron",
        "iptables -L -n; mount; date +%s; sysctl -n kernel.hostname",
        "gcc /tmp/a.c -o /tmp/a && /tmp/a; LD_PRELOAD=/tmp/x.so ls",
        "auditctl -l",
    ],
)
def test_ordinary_attack_steps_in_the_scratch_area_pass(text):
    areas = Areas().with_scratch("/var/lib/provarmor/lab/atomics/r/T")
    assert screen(text, areas=areas) == []


def test_a_user_created_elsewhere_in_the_test_may_be_changed_and_deleted():
    created = created_identities(["useradd -s /bin/bash -p $(openssl passwd -1 x) art"])
    assert screen("userdel -fr art", created=created) == []
    assert Hazard.ACCOUNTS in _hazards("userdel -fr art")


def test_the_home_of_a_created_user_may_be_written():
    text = """useradd --create-home art
su -l art -c "echo x >> /home/art/.bash_logout; exit" """
    assert screen(text) == []
    assert Hazard.WRITE in _hazards('su -l art -c "echo x >> /home/art/.bash_logout"')


def test_sudo_password_guessing_is_refused():
    assert Hazard.ACCOUNTS in _hazards('echo "$P" | sudo -S whoami')
