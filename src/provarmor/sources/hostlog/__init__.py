"""Importers for host logs: journald's JSON export and syslog text (RFC 3164, RFC 5424 and
Debian's RFC 3339-stamped ``/var/log/auth.log``).

Each line is one :class:`~provarmor.sources.hostlog.lines.LogLine` (time, host, program, pid,
text); the text of sshd, sudo, su, PAM, useradd/usermod/userdel/chage/passwd and cron is read
into authentication, session, account and scheduled-run events
(:mod:`provarmor.sources.hostlog.messages`); any other line is a ``log`` event carrying its
text, so keyword rules (``service: syslog``) still see it.
"""

from provarmor.sources.hostlog.importer import read_journal, read_syslog

__all__ = ["read_journal", "read_syslog"]
