"""What sshd, sudo, su, PAM, shadow's tools and cron lines mean: each case is a line of the
real captures in tests/data/hostlogs (journal.json), looked up by its text."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.sources.hostlog.messages import PLAIN, parse_message

DATA = Path(__file__).resolve().parents[3] / "data" / "hostlogs"
ENTRIES = [json.loads(line) for line in (DATA / "journal.json").read_text().splitlines()]


def _fact(program: str, needle: str):
    entry = next(e for e in ENTRIES if e["SYSLOG_IDENTIFIER"] == program and needle in e["MESSAGE"])
    return parse_message(program, entry["MESSAGE"])


def test_sshd_accepted_password_is_a_successful_authentication_from_the_client():
    fact = _fact("sshd", "Accepted password")
    assert (fact.action, fact.outcome) == (Action.AUTHENTICATE, "success")
    assert (fact.user, fact.source_ip, fact.source_port) == ("hlvictim", "10.99.15.1", 45002)
    assert (fact.method, fact.service) == ("password", "sshd")


def test_sshd_accepted_publickey_names_the_method():
    fact = _fact("sshd", "Accepted publickey")
    assert (fact.action, fact.user, fact.method) == (Action.AUTHENTICATE, "hladmin", "publickey")


def test_sshd_failed_password_for_an_invalid_user_says_so():
    fact = _fact("sshd", "Failed password for invalid user alice")
    assert (fact.action, fact.outcome, fact.reason) == (
        Action.AUTHENTICATE,
        "failure",
        "invalid user",
    )
    assert (fact.user, fact.method, fact.source_ip) == ("alice", "password", "10.99.15.1")


def test_sshd_invalid_user_probe_is_a_failure_without_a_method():
    fact = _fact("sshd", "Invalid user bob")
    assert (fact.action, fact.outcome, fact.user, fact.method) == (
        Action.AUTHENTICATE,
        "failure",
        "bob",
        "",
    )


def test_sshd_preauth_disconnect_and_closed_connection():
    fact = _fact("sshd", "Disconnecting authenticating user hlvictim")
    assert fact.action is Action.DISCONNECT
    assert fact.reason == "Too many authentication failures (preauth)"
    closed = _fact("sshd", "Connection closed by authenticating user hlvictim")
    assert (closed.action, closed.reason, closed.user) == (Action.DISCONNECT, "preauth", "hlvictim")


def test_pam_reports_of_sshd_count_their_failures():
    more = _fact("sshd", "PAM 2 more authentication failures")
    assert (more.action, more.outcome, more.count) == (Action.AUTHENTICATE, "failure", 2)
    pam = _fact("sshd", "pam_unix(sshd:auth): authentication failure")
    assert (pam.service, pam.source_ip, pam.method) == ("sshd", "10.99.15.1", "")


def test_pam_session_open_and_close():
    opened = _fact("sshd", "session opened for user hlvictim")
    assert (opened.action, opened.user, opened.user_id) == (
        Action.SESSION_START,
        "hlvictim",
        "1001",
    )
    closed = _fact("sshd", "session closed for user hlvictim")
    assert (closed.action, closed.user) == (Action.SESSION_END, "hlvictim")


def test_sudo_command_names_user_target_and_command():
    fact = _fact("sudo", "COMMAND=/usr/bin/id -un")
    assert (fact.action, fact.outcome) == (Action.RUN_AS, "success")
    assert (fact.user, fact.target_user, fact.command) == ("hladmin", "hlvictim", "/usr/bin/id -un")


def test_sudo_refusals_and_password_failures():
    refused = _fact("sudo", "NOT in sudoers")
    assert (refused.action, refused.outcome, refused.reason) == (
        Action.RUN_AS,
        "failure",
        "user NOT in sudoers",
    )
    wrong = _fact("sudo", "incorrect password attempts")
    assert (wrong.action, wrong.outcome, wrong.count, wrong.reason) == (
        Action.AUTHENTICATE,
        "failure",
        3,
        "incorrect password",
    )


def test_su_switch_names_both_accounts():
    fact = _fact("su", "(to hladmin)")
    assert (fact.action, fact.user, fact.target_user) == (Action.RUN_AS, "root", "hladmin")


def test_su_failure_is_a_refused_run_as():
    fact = parse_message("su", "FAILED SU (to root) hlvictim on pts/0")
    assert (fact.action, fact.outcome, fact.target_user) == (Action.RUN_AS, "failure", "root")


def test_account_changes():
    created = _fact("useradd", "new user: name=hlroot")
    assert (created.action, created.target_user, created.target_user_id) == (
        Action.USER_CREATE,
        "hlroot",
        "0",
    )
    assert _fact("userdel", "hlroot").action is Action.USER_DELETE
    expiry = _fact("chage", "hlvictim")
    assert (expiry.action, expiry.target_user) == (Action.USER_CHANGE, "hlvictim")
    password = _fact("passwd", "password changed")
    assert (password.action, password.target_user) == (Action.USER_CHANGE, "hlvictim")


def test_usermod_uid_change_names_the_new_uid():
    fact = parse_message("usermod", "change user 'svc' UID from '1003' to '0'")
    assert (fact.action, fact.target_user, fact.target_user_id) == (Action.USER_CHANGE, "svc", "0")


def test_cron_cmd_is_a_scheduled_run_with_its_command_and_pid():
    fact = _fact("CRON", "CMD (")
    assert fact.action is Action.SCHEDULED_RUN
    assert (fact.user, fact.command_pid) == ("root", 22312)
    assert fact.command == "/bin/echo hostlogs-record >/dev/null"


def test_unknown_lines_are_plain_log_lines():
    assert _fact("sshd", "Server listening") is PLAIN
    assert parse_message("kernel", "usb 1-1: new device") is PLAIN


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["sshd", "sudo", "su", "useradd", "usermod", "userdel", "chage", "passwd", "CRON", "x"]
    ),
    st.text(max_size=200),
)
def test_any_message_has_a_meaning_and_never_raises(program, message):
    assert parse_message(program, message).action in Action
