from provarmor.lab.benign.package_install import WORKLOAD


def test_the_admin_installs_the_mirrors_wheel_with_sudo_and_pip_stays_offline(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.ops_user and env.via == ["login"]
    assert env.ctx.mirror_url in command and "--no-index" in command
    assert "sudo -n curl" in command and " -m pip install" in command
