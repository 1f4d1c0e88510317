from provarmor.lab.benign.developer_edit import WORKLOAD


def test_edits_are_saved_through_a_swap_file_and_compiled(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.dev_user
    assert env.via == ["login"], "the developer works at a terminal of an ssh login"
    assert ".swp && mv" in command and "gcc -c" in command
