from provarmor.lab.benign.admin_downloads import WORKLOAD


def test_a_tool_is_fetched_from_the_mirror_run_installed_and_removed(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user
    assert env.via == ["login"], "the administrator works at a terminal of an ssh login"
    assert f"curl -fsSLO {env.ctx.mirror_url}/tools/" in command
    assert "chmod +x" in command and "sudo -n install" in command and "sudo -n rm -f" in command
