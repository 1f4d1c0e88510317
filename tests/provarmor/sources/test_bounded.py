import pytest

from provarmor.sources.bounded import BoundedMap


def test_bounded_map_evicts_least_recently_used_and_counts():
    table: BoundedMap[str, int] = BoundedMap(2)
    table.put("a", 1)
    table.put("b", 2)
    assert table.get("a") == 1  # "a" is now the most recent
    table.put("c", 3)
    assert table.get("b") is None
    assert (table.get("a"), table.get("c")) == (1, 3)
    assert table.evictions == 1
    assert len(table) == 2


def test_bounded_map_needs_room_for_one():
    with pytest.raises(ValueError, match="at least 1"):
        BoundedMap(0)


def test_bounded_map_pop_and_contains():
    bounded: BoundedMap[int, int] = BoundedMap(1)
    bounded.put(1, 1)
    assert 1 in bounded
    assert bounded.pop(1) == 1
    assert bounded.pop(1) is None
    assert 1 not in bounded
