from provarmor.lab.benign.package_install import WORKLOAD


def test_the_wheel_comes_from_the_lab_mirror_and_pip_stays_offline(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == ""
    assert env.ctx.mirror_url in command and "--no-index" in command
