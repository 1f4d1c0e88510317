from provarmor.lab.benign.build_c_project import WORKLOAD


def test_the_developer_builds_with_make_and_cleans_up(workload_commands):
    env, commands = workload_commands(WORKLOAD)
    ((command, user, _),) = commands
    assert user == env.ctx.dev_user
    assert env.via == ["login"], "the developer works at a terminal of an ssh login"
    assert "make -j2" in command and "make clean" in command and "add(" in command
