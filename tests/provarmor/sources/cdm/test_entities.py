from provarmor.sources.cdm.entities import CdmLimits, CdmState, ObjectInfo


def test_state_sums_evictions_of_all_tables():
    state = CdmState(CdmLimits(subjects=1, objects=1, principals=1))
    for name in ("x", "y", "z"):
        state.objects.put(name, ObjectInfo(kind="file"))
    assert state.evictions == 2
