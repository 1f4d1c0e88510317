from provarmor.lab.benign.test_suite import WORKLOAD


def test_a_unittest_suite_and_a_shell_check_run(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.dev_user
    assert env.via == ["login"], "the developer works at a terminal of an ssh login"
    assert "unittest -q test_storage" in command and "sh check.sh" in command
