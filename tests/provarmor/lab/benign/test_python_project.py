from provarmor.lab.benign.python_project import WORKLOAD


def test_the_package_is_byte_compiled_and_tested(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.dev_user
    assert env.via == ["login"], "the developer works at a terminal of an ssh login"
    assert "-m compileall" in command and "-m unittest discover" in command
