"""Benign: git in a developer's ssh login with a terminal: init, commits, a branch and a
merge, a bare remote, clone and push."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    name = rng.choice(("service", "webui", "infra", "docs")) + str(rng.randrange(10, 99))
    branch = rng.choice(("feature", "fix", "topic")) + f"-{rng.randrange(100, 999)}"
    command = f"""set -e
mkdir -p ~/repos ~/projects && cd ~/projects && rm -rf {name} {name}-clone
git init -q -b main {name} && cd {name}
echo "# {name}" > README.md && git add README.md && git commit -qm "initial commit"
git checkout -qb {branch} && echo "change {rng.randrange(1000)}" >> README.md
git commit -qam "update readme" && git checkout -q main && git merge -q --no-edit {branch}
git log --oneline | head -n 5 && git diff HEAD~1 --stat
git init -q --bare ~/repos/{name}.git 2>/dev/null || true
git push -q ~/repos/{name}.git main
cd .. && git clone -q ~/repos/{name}.git {name}-clone && git -C {name}-clone log --oneline | wc -l
"""
    env.type_command(env.ctx.dev_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="git-operations",
    title="git work",
    description="The developer initialises a repository, commits, branches, merges, pushes to a "
    "bare repository and clones it back.",
    run=run,
)
