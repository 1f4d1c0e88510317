from provarmor.lab.atomics.hazards import Finding, Hazard, pattern_findings


def test_pattern_findings_see_into_other_languages():
    code = 'import os\nos.system("reboot")\n'
    assert pattern_findings(code) == [Finding(Hazard.POWER, "'reboot'")]
    assert pattern_findings("print('hello')") == []


def test_words_inside_other_words_or_flags_are_not_commands():
    assert pattern_findings("halted rebooting --reboot-hint my_shutdown_x") == []
    assert pattern_findings("echo yes | head -1") == []


def test_a_finding_reads_as_hazard_and_detail():
    assert str(Finding(Hazard.KILL, "'pkill'")) == "kill: 'pkill'"
