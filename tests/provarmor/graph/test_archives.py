"""What archive an archiving program's command line creates on this host."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.graph.archives import ARCHIVERS, archive_written


@pytest.mark.parametrize(
    ("argv", "archive"),
    [
        ("tar czf /tmp/backup.tgz /etc/ssh /etc/passwd", "/tmp/backup.tgz"),
        ("tar -czf /tmp/backup.tgz /etc", "/tmp/backup.tgz"),
        ("tar -c -z -f /tmp/b.tar /etc", "/tmp/b.tar"),
        ("tar -czf/tmp/b.tar /etc", "/tmp/b.tar"),
        ("tar -C /etc -czf etc.tgz .", "etc.tgz"),
        ("tar --create --gzip --file=/srv/etc.tgz /etc", "/srv/etc.tgz"),
        ("tar --create --file /srv/etc.tgz /etc", "/srv/etc.tgz"),
        ("tar rvf /var/backups/a.tar /etc/hosts", "/var/backups/a.tar"),
        ("tar cbf 20 /tmp/x.tar /etc", "/tmp/x.tar"),
        ("tar --force-local -cf c:/backup.tar /etc", "c:/backup.tar"),
        ("/usr/bin/zip -r /tmp/etc.zip /etc", "/tmp/etc.zip"),
        ("zip -P secret -r /tmp/etc.zip /etc", "/tmp/etc.zip"),
        ("7z a /tmp/etc.7z /etc", "/tmp/etc.7z"),
        ("cpio -o -O /tmp/etc.cpio", "/tmp/etc.cpio"),
        ("cpio --create --file=/tmp/etc.cpio", "/tmp/etc.cpio"),
        ("rsync -a --delete /etc/ /srv/backup/etc/", "/srv/backup/etc/"),
        ("rsync -a -e ssh /etc/ /srv/backup/etc/", "/srv/backup/etc/"),
    ],
)
def test_a_backup_names_the_archive_it_creates(argv: str, archive: str) -> None:
    executable, *_ = argv.split()
    assert archive_written(executable, argv.split()) == archive


@pytest.mark.parametrize(
    "argv",
    [
        "tar czf - /etc/ssh",  # standard output: a pipe may send it anywhere
        "tar -c /etc/ssh",  # no -f: standard output (or the tape drive)
        "tar --create --file=- /etc",
        "tar xzf /tmp/backup.tgz",  # extraction writes files, not an archive
        "tar -tzf /tmp/backup.tgz",
        "tar czf backup.example:/srv/etc.tgz /etc",  # another host (rmt)
        "tar cf",  # no value
        "tar",
        "zip - -r /etc",
        "zip -r",
        "7z a -so /etc",
        "7z x /tmp/etc.7z",
        "7z",
        "cpio -o",  # standard output
        "cpio -i -F /tmp/etc.cpio",  # extraction
        "rsync -a /etc/ssh/ backup@10.0.0.2:/srv/",  # another host
        "rsync -a rsync://mirror/etc/ /srv/etc/",
        "rsync /etc/shadow",  # one operand: a listing
        "rsync --server --sender -logDtpre.iLsfxC . /etc/ssh/",  # another host pulls
        "rsync --server -logDtpre.iLsfxC . /srv/backup/",
        "cp -a /etc/ssh /tmp/x",  # not an archiver
        # shell escapes (GTFOBins): a command of the caller's choosing, nothing kept
        "tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=/bin/sh",
        "tar cf /tmp/a.tar /etc --to-command=sh",
        "tar -I /tmp/x.sh -cf /tmp/a.tar /etc",
        "tar -cF /tmp/x.sh -f /tmp/a.tar /etc",
        "tar --use-compress-program /tmp/x -cf /tmp/a.tar /etc",
        "zip /tmp/a.zip /etc/hosts -T -TT sh #",
        "zip /tmp/a.zip /etc/hosts -T --unzip-command=sh",
        "bash -c tar czf /tmp/x.tgz /etc",
    ],
)
def test_what_is_not_a_backup_on_this_host(argv: str) -> None:
    executable, *_ = argv.split()
    assert archive_written(executable, argv.split()) == ""


def test_the_program_is_the_executable_not_the_first_argument() -> None:
    assert archive_written("/usr/bin/tar", ["gtar-wrapper", "czf", "/tmp/a.tgz", "/etc"])
    assert archive_written("/usr/bin/python3", ["tar", "czf", "/tmp/a.tgz"]) == ""


@given(
    st.sampled_from(sorted(ARCHIVERS)),
    st.lists(st.text(max_size=12), max_size=8),
)
def test_any_command_line_gives_a_string_never_an_error(program: str, args: list[str]) -> None:
    result = archive_written(f"/usr/bin/{program}", [program, *args])
    assert isinstance(result, str)
    assert result == "" or result in args or any(result in arg for arg in args)
