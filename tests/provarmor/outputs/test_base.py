"""The Output seam: the product's outputs and the test kit's fake all fit it."""

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
