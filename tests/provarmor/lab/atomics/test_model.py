import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.lab.atomics.model import load_catalogue, parse_atomic_file
from provarmor.model.errors import ParseError


def _parse(path: Path):
    return parse_atomic_file(path.read_text(), location=path.name)


def test_parses_a_technique_file_with_its_arguments_and_executor(atomics_data):
    parsed = _parse(atomics_data / "atomics" / "T1003.008" / "T1003.008.yaml")
    assert parsed.technique_id == "T1003.008" and parsed.errors == ()
    first = parsed.tests[0]
    assert first.test_id == "T1003.008-1" and first.name == "Access /etc/shadow (Local)"
    assert first.guid == "3723ab77-c546-403c-8fb4-bb577033b235"
    assert first.platforms == ("linux",)
    assert first.arguments[0].name == "output_file"
    assert first.arguments[0].default == "/tmp/T1003.008.txt"
    assert first.executor.name == "bash" and first.executor.elevation_required
    assert first.executor.command.startswith("sudo cat /etc/shadow > #{output_file}")
    assert first.executor.cleanup_command.strip() == "rm -f #{output_file}"


def test_numeric_defaults_become_text_and_dependencies_are_kept(atomics_data):
    parsed = _parse(atomics_data / "atomics" / "T1529" / "T1529.yaml")
    timeouts = [a.default for t in parsed.tests for a in t.arguments if a.name == "timeout"]
    assert "1" in timeouts and "now" in timeouts
    windows = [t for t in parsed.tests if not t.runs_on_linux]
    assert windows and all("windows" in t.platforms for t in windows)


def test_dependencies_and_their_executor(atomics_data):
    parsed = _parse(atomics_data / "atomics" / "T1059.004" / "T1059.004.yaml")
    harvest = parsed.tests[2]
    assert harvest.dependency_executor == "bash"
    assert harvest.dependencies[0].prereq_command.startswith("if [ -f #{autosuid} ]")
    assert "curl --create-dirs" in harvest.dependencies[0].get_prereq_command


def test_a_test_missing_its_executor_name_is_an_error_and_the_others_are_kept(atomics_data):
    parsed = _parse(atomics_data / "broken" / "T1003.008-no-executor-name.yaml")
    assert [t.number for t in parsed.tests] == [1, 3, 4, 5]
    assert len(parsed.errors) == 1
    assert (
        parsed.errors[0].location == "T1003.008-no-executor-name.yaml:atomic_tests[1].executor.name"
    )


def test_a_truncated_test_names_the_missing_field(atomics_data):
    parsed = _parse(atomics_data / "broken" / "T1036.008-truncated.yaml")
    assert parsed.tests == ()
    assert parsed.errors[0].location == "T1036.008-truncated.yaml:atomic_tests[0].executor"


def test_a_file_that_is_not_yaml_raises_with_file_and_line(atomics_data):
    with pytest.raises(ParseError) as raised:
        _parse(atomics_data / "broken" / "T1036.008-cut-in-quote.yaml")
    assert raised.value.location == "T1036.008-cut-in-quote.yaml:2"


def test_tests_that_are_not_a_list_raise_naming_the_field(atomics_data):
    with pytest.raises(ParseError) as raised:
        _parse(atomics_data / "broken" / "T1036.008-tests-not-a-list.yaml")
    assert raised.value.location == "T1036.008-tests-not-a-list.yaml:atomic_tests"


def test_catalogue_counts_files_tests_and_linux_tests(atomics_data):
    catalogue = load_catalogue(atomics_data)
    assert catalogue.atomics == atomics_data / "atomics"
    assert catalogue.files == 5 and catalogue.errors == ()
    assert len(catalogue.tests) == 43 and len(catalogue.linux_tests) == 37


def test_catalogue_counts_broken_files_without_raising(tmp_path, atomics_data):
    for broken in (atomics_data / "broken").glob("*.yaml"):
        folder = tmp_path / "atomics" / broken.stem
        folder.mkdir(parents=True)
        (folder / f"{broken.stem}.yaml").write_bytes(broken.read_bytes())
    catalogue = load_catalogue(tmp_path)
    assert catalogue.files == 4 and len(catalogue.errors) == 4
    assert [t.test_id for t in catalogue.tests] == [f"T1003.008-{n}" for n in (1, 3, 4, 5)]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_garbage_text_only_ever_raises_parse_error(text):
    with contextlib.suppress(ParseError):
        parse_atomic_file(text, location="fuzz.yaml")


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_TREES)
def test_wrong_shapes_only_ever_raise_parse_error(tree):
    import yaml

    text = yaml.safe_dump({"attack_technique": "T1000", "atomic_tests": [tree]})
    with contextlib.suppress(ParseError):
        parse_atomic_file(text, location="fuzz.yaml")


@pytest.mark.shared
def test_every_shared_linux_test_parses(shared_data):
    catalogue = load_catalogue(shared_data / "atomic-red-team")
    assert catalogue.errors == ()
    assert catalogue.files == 118 and len(catalogue.linux_tests) == 391
