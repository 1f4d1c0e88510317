import dataclasses
import threading

from provarmor.lab.context import LabContext
from provarmor.lab.execution import Operator, spawned_for
from provarmor.lab.scenario import Action, Channel
from provarmor.lab.services import SHELL_AGENT, TaskQueue


def test_spawn_log_lines_are_matched_by_port_and_time(tmp_path):
    log = tmp_path / "spawns"
    log.write_text("40000 11 100\n40001 12 150\n40000 13 300\nbroken\n40000 14 400\n")
    assert spawned_for(log, 40000, since=200) == [(13, 300), (14, 400)]
    assert spawned_for(tmp_path / "missing", 40000, since=0) == []


class QueueEnvironment:
    def __init__(self, root):
        self.ctx = dataclasses.replace(LabContext.from_seed(1), run_dir=root)
        self.queue = TaskQueue(root / "c2")


def answer_next(queue, agent, status):
    def work():
        for _ in range(200):
            task = queue.take(agent)
            if task:
                queue.answer(task[0], f"{status}\nout:{task[1]}".encode())
                return
            threading.Event().wait(0.01)

    threading.Thread(target=work, daemon=True).start()


def test_implant_and_shell_tasks_wait_for_the_answer_and_read_its_status(tmp_path):
    env = QueueEnvironment(tmp_path)
    operator = Operator(env)
    answer_next(env.queue, env.ctx.c2.agent, 0)
    done = operator.perform(Action(step="s", channel=Channel.IMPLANT, command="id", timeout=5))
    assert done.ok and done.output == "out:id" and done.roots == ()
    answer_next(env.queue, SHELL_AGENT, 2)
    failed = operator.perform(Action(step="t", channel=Channel.SHELL, command="false", timeout=5))
    assert not failed.ok and failed.output == "out:false"
    late = operator.perform(Action(step="u", channel=Channel.IMPLANT, command="x", timeout=0.2))
    assert not late.ok and late.output == "timeout"
