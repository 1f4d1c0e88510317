from provarmor.investigation.signal_context import MAX_NOTES, context_notes, context_sentence
from provarmor.model.alert import Alert


def _alert(number: int, **context: str) -> Alert:
    return Alert(
        id=f"a{number}",
        rule_id=f"r{number % 3}",
        rule_title=f"Rule {number % 3}",
        level=context.pop("level", "high"),
        first_timestamp=number,
        **context,
    )


SERVER = "network-facing server's child: python3 web.py -> sh -> cat (accepted 127.0.0.1:5)"
PACKAGE = "package transaction: apt-get -> dpkg -> useradd (apt-get started a package transaction)"


def test_notes_say_what_context_did_to_each_signal_kept_first_and_grouped():
    alerts = [
        _alert(1, level="low", original_level="high", context="package",
               context_effect="lowered", context_reason=PACKAGE),
        _alert(2, context="server-child", context_effect="kept", context_reason=SERVER),
        _alert(5, context="server-child", context_effect="kept", context_reason=SERVER),
        _alert(3, level="medium", context="none", context_reason="no known context"),
    ]  # fmt: skip
    assert context_notes(alerts) == [
        f"Rule 2: kept high (raising context): {SERVER} (x2)",
        f"Rule 1: lowered high -> low: {PACKAGE}",
    ]
    assert context_sentence(alerts) == (
        "Context kept 2 signals at their level (network-facing server's child) "
        "and lowered 1 (package transaction)."
    )


def test_no_context_no_notes_and_long_lists_are_cut():
    assert context_notes([_alert(1)]) == []
    assert context_sentence([_alert(1)]) == ""
    many = [
        _alert(n, context="admin", context_effect="lowered", context_reason=f"why {n}")
        for n in range(MAX_NOTES + 3)
    ]
    notes = context_notes(many)
    assert len(notes) == MAX_NOTES + 1
    assert notes[-1] == "... 3 more"
