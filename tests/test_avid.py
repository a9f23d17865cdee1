import pytest

from pipeline.avid import parse
from pipeline.errors import InvalidAvid


@pytest.mark.parametrize("text, code, edition", [
    ("abc123", "ABC-123", ""),
    (" ssis-001 ", "SSIS-001", ""),
    ("ABC_123", "ABC-123", ""),
    ("abc 123", "ABC-123", ""),
    ("FC2 PPV 123456", "FC2-PPV-123456", ""),
    ("FC2-123456", "FC2-PPV-123456", ""),
    ("fc2ppv-1234567", "FC2-PPV-1234567", ""),
    ("abc-123-c", "ABC-123", "C"),
    ("ABC-123-UC", "ABC-123", "UC"),
    ("abc-123-u", "ABC-123", "U"),
    ("abc-123-cd2", "ABC-123", "CD2"),
    ("ABC-123C", "ABC-123C", ""),
    ("T28-123", "T28-123", ""),
    ("heyzo-1234", "HEYZO-1234", ""),
])
def test_normalises(text, code, edition):
    a = parse(text)
    assert (a.code, a.edition) == (code, edition)


@pytest.mark.parametrize("text", [
    "", "   ", "ABC", "123", "../etc/passwd", "ABC-123/../../x", "ABC\x00-123", "ABC\n-123",
    "A" * 31, "ABC-" + "1" * 40, "abc-12é", "<script>", None, 123, "ABC--", "-123",
])
def test_rejects_with_accepted_forms(text):
    with pytest.raises(InvalidAvid) as e:
        parse(text)
    assert "accepted forms" in str(e.value)
    assert "FC2-PPV-" in str(e.value)


def test_full_and_lower():
    a = parse("abc-123-c")
    assert a.full == "ABC-123-C"
    assert a.lower == "abc-123"
    assert not a.is_fc2
    assert parse("fc2-123456").is_fc2
