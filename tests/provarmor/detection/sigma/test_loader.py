"""Rule files in, pySigma rules or RuleErrors naming file and field out; never a traceback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from provarmor.detection.sigma.loader import load_rule_file, load_rule_paths, parse_rules
from provarmor.model.errors import RuleError


def test_bad_yaml_names_file_and_line(test_rules):
    parsed = load_rule_file(test_rules / "bad" / "bad_yaml.yml")
    assert not parsed.sources
    (error,) = parsed.errors
    assert error.location == f"{test_rules / 'bad' / 'bad_yaml.yml'}:8"
    assert "bad YAML" in error.message


def test_unknown_modifier_names_the_detection_key(test_rules):
    path = test_rules / "bad" / "unknown_modifier.yml"
    (error,) = load_rule_file(path).errors
    assert error.location == f"{path}:detection.selection.CommandLine|containz"
    assert error.message == "unknown modifier 'containz'"


def test_missing_detection_names_the_field(test_rules):
    path = test_rules / "bad" / "missing_detection.yml"
    (error,) = load_rule_file(path).errors
    assert error.location == f"{path}:detection"


def test_bad_document_does_not_hide_the_good_one(test_rules):
    path = test_rules / "bad" / "good_then_bad.yml"
    parsed = load_rule_file(path)
    assert [source.rule.title for source in parsed.sources] == [
        "A good rule before a broken document"
    ]
    (error,) = parsed.errors
    assert error.location == f"{path}#2:level"
    assert "catastrophic" in error.message


def test_directory_is_read_recursively(test_rules):
    parsed = load_rule_paths([test_rules])
    assert parsed.files == 14
    assert len(parsed.sources) == 11  # 9 SigmaHQ rules, 2 bad-directory rules that parse
    assert len(parsed.errors) == 4


def test_unreadable_file_is_an_error(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"title: caf\xe9\n")
    (error,) = load_rule_file(path).errors
    assert error.location == str(path)


def test_non_mapping_document_and_collection_action_are_errors():
    parsed = parse_rules("- just\n- a list\n---\naction: global\ntitle: x\n", path="x.yml")
    assert [e.location for e in parsed.errors] == ["x.yml:document", "x.yml#2:action"]


def test_missing_condition_and_non_mapping_detection():
    base = "title: t\nlogsource: {product: linux, category: process_creation}\n"
    parsed = parse_rules(base + "detection:\n  sel: {Image: x}\n", path="a.yml")
    assert parsed.errors[0].location == "a.yml:detection.condition"
    parsed = parse_rules(base + "detection: [x]\n", path="b.yml")
    assert parsed.errors[0].location == "b.yml:detection"


def test_utf16le_is_accepted_as_the_spec_spells_it():
    text = (
        "title: t\nlogsource: {product: linux, category: process_creation}\n"
        "detection:\n  sel:\n    - CommandLine|utf16le|base64: x\n  condition: sel\n"
    )
    parsed = parse_rules(text, path="a.yml")
    assert not parsed.errors
    (source,) = parsed.sources
    assert isinstance(source.rule, SigmaRule)
    (detection,) = source.rule.detection.detections["sel"].detection_items
    assert isinstance(detection, SigmaDetection)
    (item,) = detection.detection_items
    assert isinstance(item, SigmaDetectionItem)
    assert [m.__name__ for m in item.modifiers] == ["SigmaWideModifier", "SigmaBase64Modifier"]


def test_correlation_range_condition_is_kept_whole():
    text = (
        "title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [r]\n"
        "  group-by: [User]\n  timespan: 5m\n  condition: {gt: 10, lte: 100}\n"
    )
    (source,) = parse_rules(text, path="c.yml").sources
    assert isinstance(source.rule, SigmaCorrelationRule)
    assert source.correlation_condition == {"gt": 10, "lte": 100}


def test_correlation_errors_name_the_correlation_field():
    text = "title: c\ncorrelation:\n  type: event_count\n  rules: [r]\n  timespan: 5x\n"
    text += "  condition: {gte: 2}\n"
    (error,) = parse_rules(text, path="c.yml").errors
    assert error.location == "c.yml:correlation.timespan"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_garbage_gives_only_rule_errors(text):
    parsed = parse_rules(text, path="fuzz.yml")
    assert all(isinstance(error, RuleError) for error in parsed.errors)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "title",
                        "detection",
                        "condition",
                        "sel",
                        "x|re",
                        "logsource",
                        "correlation",
                        "type",
                        "rules",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_odd_structures_give_only_rule_errors(document):
    import yaml

    parsed = parse_rules(yaml.safe_dump(document), path="odd.yml")
    assert all(isinstance(error, RuleError) for error in parsed.errors)
