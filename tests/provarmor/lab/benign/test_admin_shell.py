from provarmor.lab.benign.admin_shell import WORKLOAD


def test_an_interactive_session_is_typed_at_an_ssh_login_and_ends_with_exit(workload_commands):
    env, [(_, user, typed)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user
    assert env.via == ["login"]
    lines = typed.decode().splitlines()
    assert lines[-1] == "exit" and len(lines) >= 6
