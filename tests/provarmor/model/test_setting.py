import dataclasses

from provarmor.model.setting import Maturity, setting


def test_setting_records_description_and_maturity():
    @dataclasses.dataclass(frozen=True)
    class Example:
        size: int = setting(3, "How big.", maturity=Maturity.EXPERIMENTAL)

    (field,) = dataclasses.fields(Example)
    assert Example().size == 3
    assert field.metadata == {"description": "How big.", "maturity": Maturity.EXPERIMENTAL}
