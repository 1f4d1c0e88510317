from provarmor.lab.benign.ssh_admin import WORKLOAD


def test_ssh_and_scp_reach_only_the_admin_host(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user
    assert env.via == ["login"], "the administrator works at a terminal of an ssh login"
    admin = env.ctx.address("admin")
    assert command.count(f"@{admin}") == 2
    assert env.ctx.address("host2") not in command
