from provarmor.lab.benign.git_operations import WORKLOAD


def test_git_commits_branches_merges_pushes_and_clones(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == env.ctx.dev_user
    assert env.via == ["login"], "the developer works at a terminal of an ssh login"
    for verb in ("git init", "git commit", "git merge", "git push", "git clone"):
        assert verb in command
