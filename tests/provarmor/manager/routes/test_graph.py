"""The graph routes on the real lab capture: a node with its edges, and backward and forward
tracking from the incident's root cause."""

from provarmor.manager.auth import Role

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def test_root_cause_node_and_traces(loaded):
    story = loaded.get(f"/incidents/{loaded.get('/incidents').json()[0]['id']}").json()
    root = story["root_cause"]
    node = loaded.get(f"/graph/nodes/{root}", host=LAB_HOST).json()
    assert node["node"]["id"] == root
    assert node["out_total"] >= 1
    assert node["out_total"] == len(node["out_edges"])
    assert all(edge["src"] == root for edge in node["out_edges"])
    assert all(edge["dst"] == root for edge in node["in_edges"])
    written = next(n["id"] for n in story["nodes"] if n["kind"] == "file")
    assert "/" in written  # file node ids hold a path: the route takes it whole
    assert loaded.get(f"/graph/nodes/{written}", host=LAB_HOST).json()["node"]["id"] == written
    forward = loaded.get(
        "/graph/trace", host=LAB_HOST, node=root, direction="forward", max_nodes=200
    ).json()
    assert forward["start"] == root
    assert forward["direction"] == "forward"
    assert any(edge["src"] == root for edge in forward["edges"])
    story_nodes = {n["id"] for n in story["nodes"]}
    assert story_nodes & {n["id"] for n in forward["nodes"]} - {root}
    backward = loaded.get("/graph/trace", host=LAB_HOST, node=root, direction="backward").json()
    assert backward["direction"] == "backward"
    assert root in {n["id"] for n in backward["nodes"]}
    small = loaded.get("/graph/trace", host=LAB_HOST, node=root, direction="forward", max_nodes=1)
    assert len(small.json()["nodes"]) <= 1 < len(forward["nodes"])


def test_unknown_node_host_and_bad_parameters(manager, lab_lines):
    agent_id, credential = manager.enroll()
    manager.upload(agent_id, credential, sequence=3, body=b"".join(lab_lines[:3]))
    assert manager.get("/graph/nodes/nope", host=LAB_HOST).json()["field"] == "node_id"
    assert manager.get("/graph/nodes/nope", host=LAB_HOST).status_code == 404
    assert manager.get("/graph/trace", host=LAB_HOST, node="nope").status_code == 404
    no_host = manager.get("/graph/trace", node="x")
    assert (no_host.status_code, no_host.json()["field"]) == (400, "host")
    other = manager.get("/graph/nodes/x", host="other-host")
    assert (other.status_code, other.json()["field"]) == (404, "host")
    too_many = manager.get("/graph/trace", host=LAB_HOST, node="x", max_nodes=5001)
    assert too_many.status_code == 400
    bad_time = manager.get("/graph/trace", host=LAB_HOST, node="x", at="later")
    assert (bad_time.status_code, bad_time.json()["field"]) == (400, "at")
    assert manager.client.get("/api/v1/graph/trace").status_code == 401
    assert manager.get("/graph/trace", token=manager.token(Role.ANALYST)).status_code == 400
