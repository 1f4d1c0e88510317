import ctypes
import shutil
import socket
import subprocess

import pytest

from provarmor.lab.payloads import (
    backdoored_tool_c,
    harmless_preload_c,
    memfd_loader,
    port_scanner_c,
    port_scanner_py,
    python_implant,
    reverse_shell_c,
)
from provarmor.lab.preparation import compile_c

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def test_python_payloads_compile():
    compile(
        python_implant(
            beacon_url="http://127.0.0.1:1/b",
            result_url="http://127.0.0.1:1/r",
            interval=0.2,
            lifetime=5,
        ),
        "implant",
        "exec",
    )
    compile(memfd_loader(url="http://127.0.0.1:1/x", name="kworker"), "loader", "exec")
    compile(port_scanner_py(), "scan", "exec")


@needs_gcc
def test_c_payloads_compile(tmp_path):
    compile_c(reverse_shell_c(address="127.0.0.1", port=9, lifetime=5), tmp_path / "shell")
    compile_c(backdoored_tool_c(beacon_url="http://127.0.0.1:9/x"), tmp_path / "tool")
    assert (tmp_path / "shell").stat().st_mode & 0o111


@needs_gcc
def test_the_scanner_reports_an_open_loopback_port_and_not_a_closed_one(tmp_path):
    compile_c(port_scanner_c(), tmp_path / "scan")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        done = subprocess.run(
            [tmp_path / "scan", "300", f"127.0.0.1:{port}", "127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    assert done.stdout == f"127.0.0.1:{port} open\n"


@needs_gcc
def test_the_preload_library_loads_and_does_nothing(tmp_path):
    compile_c(harmless_preload_c(), tmp_path / "lib.so", shared=True)
    library = ctypes.CDLL(str(tmp_path / "lib.so"))
    assert library.lab_preload_marker() == 0
    done = subprocess.run(
        ["true"], env={"LD_PRELOAD": str(tmp_path / "lib.so")}, capture_output=True
    )
    assert done.returncode == 0 and done.stderr == b""
