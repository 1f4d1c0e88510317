from provarmor.model.actions import CATEGORY_OF, Action, Category


def test_every_action_has_an_ecs_category():
    assert set(CATEGORY_OF) == set(Action)
    assert CATEGORY_OF[Action.CONNECT] is Category.NETWORK
    assert CATEGORY_OF[Action.EXEC] is Category.PROCESS


def test_issue_minimum_action_set_is_covered():
    required = {
        "exec",
        "fork",
        "exit",
        "open",
        "read",
        "write",
        "create",
        "delete",
        "rename",
        "chmod",
        "chown",
        "connect",
        "accept",
        "bind",
        "listen",
        "send",
        "recv",
        "setuid",
        "setgid",
        "ptrace",
        "module_load",
        "memfd_create",
        "mmap_exec",
    }
    assert required <= {action.value for action in Action}
