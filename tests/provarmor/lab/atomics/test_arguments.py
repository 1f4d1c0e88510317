from provarmor.lab.atomics.arguments import (
    Workspace,
    argument_values,
    relocate_path,
    substitute,
    unresolved,
)
from provarmor.lab.atomics.model import parse_atomic_file

SPACE = Workspace(scratch="/s/T1", atomics="/s/T1/atomics")


def test_temporary_paths_move_under_the_scratch_directory():
    assert relocate_path("/tmp/art.sh", SPACE) == "/s/T1/tmp/art.sh"
    assert relocate_path("/tmp", SPACE) == "/s/T1/tmp"
    assert relocate_path("/var/tmp/.x/y", SPACE) == "/s/T1/vartmp/.x/y"
    assert relocate_path("/tmp/AtomicRedTeam/atomics/T1222.002", SPACE) == "/s/T1/atomics/T1222.002"


def test_other_values_are_left_alone():
    for value in ("/tmpfile", "/etc/passwd", "~/.bash_history", "8.8.8.8", "/var/tmpx"):
        assert relocate_path(value, SPACE) == value


def test_argument_values_use_relocated_defaults(atomics_data):
    text = (atomics_data / "atomics" / "T1003.008" / "T1003.008.yaml").read_text()
    test = parse_atomic_file(text, location="T1003.008.yaml").tests[0]
    assert argument_values(test, workspace=SPACE) == {"output_file": "/s/T1/tmp/T1003.008.txt"}


def test_substitute_fills_names_case_insensitively_and_repeatedly():
    text = "echo #{Output_File} #{output_file} #{b}"
    values = {"output_file": "/s/o", "b": "#{output_file}!"}
    assert substitute(text, values, atomics="/a") == "echo /s/o /s/o /s/o!"


def test_substitute_fills_the_atomics_folder_in_all_its_spellings():
    text = "sh PathToAtomicsFolder/x $PathToAtomicsFolder/y ${PathToAtomicsFolder}/z"
    assert substitute(text, {}, atomics="/a") == "sh /a/x /a/y /a/z"


def test_unknown_placeholders_stay_and_are_reported():
    filled = substitute("cat #{missing} #{known}", {"known": "k"}, atomics="/a")
    assert filled == "cat #{missing} k"
    assert unresolved(filled) == ["#{missing}"]
    assert unresolved("echo '#!/bin/sh' # comment {x}") == []
