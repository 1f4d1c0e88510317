"""The Output seam: the product's outputs and the test kit's fake all fit it."""

import pytest

from provarmor.model.alert import Alert
from provarmor.outputs.base import Output
from provarmor.outputs.files import AlertFile, IncidentFile
from provarmor.testing.outputs import RecordingOutput


def test_the_file_outputs_and_the_fake_are_outputs(tmp_path):
    outputs = [
        AlertFile(tmp_path / "a.jsonl", format="ecs"),
        IncidentFile(tmp_path / "i.jsonl", format="json"),
        RecordingOutput(),
    ]
    try:
        assert all(isinstance(output, Output) for output in outputs)
    finally:
        for output in outputs:
            output.close()


def test_the_fake_keeps_findings_in_order_and_can_fail_like_a_full_disk():
    first, second = (Alert(id=f"r:{n}", rule_id="r", rule_title="t") for n in (1, 2))
    output = RecordingOutput()
    output.alert(first)
    output.alert(second)
    output.close()
    assert output.alerts == [first, second]
    assert output.closed
    broken = RecordingOutput(fail=OSError(28, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        broken.alert(first)
    assert broken.alerts == []
