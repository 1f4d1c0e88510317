from provarmor.lab.benign.admin_shell import WORKLOAD


def test_an_interactive_session_is_fed_through_a_pty_and_ends_with_exit(workload_commands):
    env, [(command, user, stdin)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user
    assert command.startswith("script ")
    lines = stdin.decode().splitlines()
    assert lines[-1] == "exit" and len(lines) >= 6
