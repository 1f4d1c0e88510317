from provarmor.agent.delivery import Delivery
from provarmor.agent.spool import Spool, SpoolPosition
from provarmor.model.actions import Action
from provarmor.model.errors import StorageError
from provarmor.model.event import Event
from provarmor.testing.factories import make_event


def events(first, count):
    return [
        make_event(Action.WRITE, ts=n, event_id=f"e{n}", path="/tmp/x")
        for n in range(first, first + count)
    ]


class Receiver:
    """A sink that keeps batches as the manager and the workers do: a batch whose end
    sequence is not beyond the acknowledged one is a re-delivery and adds nothing. With
    ``lose_answers``, that many writes are stored but answered with an error (the answer
    or JetStream's acknowledgement was lost on the way back)."""

    name = "receiver"

    def __init__(self, *, lose_answers=0):
        self.acked = 0
        self.stored: list[str] = []
        self.lose_answers = lose_answers

    def committed(self):
        return SpoolPosition(sequence=self.acked) if self.acked else None

    def write(self, batch: list[Event], position: SpoolPosition) -> None:
        if position.sequence > self.acked:
            self.stored += [e.event.id for e in batch]
            self.acked = position.sequence
        if self.lose_answers:
            self.lose_answers -= 1
            raise StorageError("no acknowledgement", location="receiver")

    def close(self):
        pass


def test_a_batch_whose_answer_was_lost_is_sent_again_with_the_same_bounds(tmp_path):
    receiver = Receiver(lose_answers=1)
    with Spool(tmp_path / "spool", max_bytes=1 << 20, fsync=False, consumers=["receiver"]) as spool:
        delivery = Delivery(spool, receiver, batch_events=100)
        spool.append(events(0, 10))
        delivery.run()  # stored, but the sink said it failed
        assert (delivery.errors, delivery.delivered, delivery.unconfirmed) == (1, 0, 10)
        spool.append(events(10, 5))  # more arrives before the retry
        delivery.run()
        assert receiver.stored == [f"e{n}" for n in range(15)]  # each once
        assert (delivery.delivered, delivery.unconfirmed) == (15, None)
        assert spool.read("receiver", 100).events == []


def test_a_failed_write_that_was_not_stored_is_retried_then_the_rest_follows(tmp_path):
    receiver = Receiver()
    with Spool(tmp_path / "spool", max_bytes=1 << 20, fsync=False, consumers=["receiver"]) as spool:
        delivery = Delivery(spool, receiver, batch_events=4)
        spool.append(events(0, 10))
        delivery.run()
        assert receiver.stored == [f"e{n}" for n in range(10)]
        assert receiver.acked == 10
        assert delivery.errors == 0
