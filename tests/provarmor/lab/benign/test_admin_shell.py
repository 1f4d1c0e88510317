from provarmor.lab.benign.admin_shell import WORKLOAD


def test_an_interactive_session_is_typed_at_an_ssh_login(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user
    assert env.via == ["login"]
    lines = command.splitlines()
    assert len(lines) >= 5 and any(line.startswith("sudo -n ") for line in lines)
