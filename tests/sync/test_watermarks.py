"""watermarks.py: signpost, forward-only bookmarks, UTC only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sync import watermarks

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("stored", "observed", "expected"),
    [
        (None, [], None),
        (None, [T0 - S, T0 - 2 * S], T0 - S),
        (T0 - 5 * S, [T0 - 9 * S], T0 - 5 * S),  # never backwards
        (T0 - 5 * S, [T0 + 9 * S], T0),  # never past the signpost
        (T0 - 5 * S, [None, T0 - S], T0 - S),
    ],
)
def test_advance(
    stored: datetime | None, observed: list[datetime | None], expected: datetime | None
) -> None:
    assert watermarks.advance(stored, observed, signpost=T0) == expected


def test_naive_values_are_refused() -> None:
    with pytest.raises(ValueError, match="aware UTC"):
        watermarks.advance(None, [datetime(2024, 1, 1)], signpost=T0)  # noqa: DTZ001


def test_other_time_zones_become_utc() -> None:
    plus_two = T0.astimezone(__import__("datetime").timezone(timedelta(hours=2)))
    advanced = watermarks.advance(None, [plus_two], signpost=T0 + S)
    assert advanced is not None and advanced.tzinfo is UTC


def test_read_window_and_literals() -> None:
    assert watermarks.read_from(None) is None
    assert watermarks.read_from(T0, overlap=watermarks.CRM_OVERLAP) == T0 - S
    assert watermarks.crm_filter_value(T0) == "2024-05-01T12:00:00Z"
    assert watermarks.page_bookmark(T0) < T0


@given(
    st.lists(st.datetimes(timezones=st.just(UTC)), max_size=20),
    st.none() | st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
)
def test_advance_is_monotonic_and_capped(
    observed: list[datetime], stored: datetime | None, signpost: datetime
) -> None:
    result = watermarks.advance(stored, observed, signpost=signpost)
    if stored is not None:
        assert result is not None and result >= stored
    if observed:
        assert result is not None
        assert result <= max(signpost, stored or signpost)
