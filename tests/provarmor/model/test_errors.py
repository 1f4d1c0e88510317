from provarmor.model.errors import ParseError, ProvArmorError, StorageError


def test_errors_carry_their_location():
    error = ParseError("bad hex", location="audit.log:12")
    assert str(error) == "audit.log:12: bad hex"
    assert isinstance(error, ProvArmorError)
    assert str(StorageError("disk full")) == "disk full"
