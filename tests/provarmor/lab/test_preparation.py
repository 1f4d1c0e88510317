import dataclasses
import io
import os
import zipfile

import pytest

from provarmor.lab.context import LabContext
from provarmor.lab.preparation import publish, write_setup_file
from provarmor.lab.scenario import Payload, SetupFile


def test_payloads_are_written_zipped_or_compiled_into_the_c2_root(tmp_path):
    ctx = dataclasses.replace(LabContext.from_seed(1), run_dir=tmp_path)
    text = publish(ctx, Payload(path="/static/a.js", content="print(1)"))
    assert text == tmp_path / "c2" / "www" / "static" / "a.js" and text.read_text() == "print(1)"
    zipped = publish(ctx, Payload(path="dl/s.zip", content="x = 1", archive_as="scan.py"))
    with zipfile.ZipFile(io.BytesIO(zipped.read_bytes())) as archive:
        assert archive.read("scan.py") == b"x = 1"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_setup_files_and_missing_parents_get_owner_and_mode(tmp_path):
    path = tmp_path / "a" / "b" / "tool"
    write_setup_file(SetupFile(path=str(path), content="#!/bin/sh\n", mode=0o4755, owner="root"))
    assert path.read_text() == "#!/bin/sh\n"
    assert path.stat().st_mode & 0o7777 == 0o4755
    assert (tmp_path / "a").stat().st_uid == 0
