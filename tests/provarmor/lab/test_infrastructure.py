import io
import tarfile
import zipfile

from provarmor.lab.context import LabContext
from provarmor.lab.infrastructure import mirror_files


def test_the_mirror_serves_an_executable_tool_and_an_installable_wheel():
    files = mirror_files(LabContext.from_seed(2))
    tool = next(name for name in files if name.startswith("tools/"))
    with tarfile.open(fileobj=io.BytesIO(files[tool])) as archive:
        executable = [m for m in archive.getmembers() if m.mode & 0o111]
    assert len(executable) == 1
    wheel = next(name for name in files if name.endswith(".whl"))
    package = wheel.split("/")[1]
    with zipfile.ZipFile(io.BytesIO(files[wheel])) as archive:
        metadata = archive.read(f"{package}-1.0.dist-info/METADATA").decode()
    assert f"Name: {package}" in metadata
