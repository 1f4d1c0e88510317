from provarmor.graph.noise import NO_FILTER, NoiseFilter
from provarmor.graph.records import Node, NodeKind


def file(path):
    return Node(id=f"file:h:{path}", kind=NodeKind.FILE, host="h", first_ts=0, last_ts=0, path=path)


def test_well_known_noise_is_hidden_and_attack_relevant_files_are_not():
    noise = NoiseFilter()
    for path in (
        "/proc/self/maps",
        "/dev/null",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/locale/C.utf8/LC_CTYPE",
        "/etc/ld.so.cache",
    ):
        assert noise.is_noise(file(path)), path
    for path in (
        "/etc/passwd",
        "/etc/ld.so.preload",
        "/tmp/libevil.so",
        "/root/.ssh/authorized_keys",
    ):
        assert not noise.is_noise(file(path)), path


def test_processes_are_never_noise_and_no_filter_hides_nothing():
    process = Node(id="p", kind=NodeKind.PROCESS, host="h", first_ts=0, last_ts=0, label="/proc/x")
    assert not NoiseFilter().is_noise(process)
    assert not NO_FILTER.is_noise(file("/dev/null"))
