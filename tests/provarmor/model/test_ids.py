from provarmor.model.ids import file_node_id, process_entity_id, socket_node_id


def test_entity_id_is_stable_and_distinguishes_pid_reuse():
    a = process_entity_id(host_id="h", boot_id="b", pid=42, start=1000)
    assert a == process_entity_id(host_id="h", boot_id="b", pid=42, start=1000)
    assert a != process_entity_id(host_id="h", boot_id="b", pid=42, start=2000)
    assert a != process_entity_id(host_id="h", boot_id="b2", pid=42, start=1000)
    assert a != process_entity_id(host_id="h2", boot_id="b", pid=42, start=1000)
    assert len(a) == 16 and a.isascii()


def test_node_ids():
    assert file_node_id("h", "/etc/passwd") == "file:h:/etc/passwd"
    assert socket_node_id("h", ip="10.0.0.1", port=80) == "sock:10.0.0.1:80"
    assert socket_node_id("h", ip="", port=0, address="/run/x.sock") == "sock:h:/run/x.sock"
