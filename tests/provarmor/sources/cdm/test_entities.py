import pytest

from provarmor.sources.cdm.entities import BoundedMap, CdmLimits, CdmState, ObjectInfo


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


def test_state_sums_evictions_of_all_tables():
    state = CdmState(CdmLimits(subjects=1, objects=1, principals=1))
    for name in ("x", "y", "z"):
        state.objects.put(name, ObjectInfo(kind="file"))
    assert state.evictions == 2
