"""The rules route: the loaded detection rules with their ATT&CK mapping."""

from provarmor.manager.auth import Role


def test_rules_list_the_loaded_kit(manager, kit):
    rules = manager.get("/rules").json()
    assert len(rules) > 50
    assert [rule["key"] for rule in rules] == [rule.key for rule in kit.rules()]
    assert all(rule["level"] and rule["title"] for rule in rules)
    assert any("T1059.004" in rule["techniques"] for rule in rules)


def test_rules_need_an_analyst(manager):
    assert manager.client.get("/api/v1/rules").status_code == 401
    assert manager.get("/rules", token=manager.token(Role.ANALYST)).status_code == 200
