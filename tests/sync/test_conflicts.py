"""conflicts.py: the per-record decision table."""

from __future__ import annotations

import pytest

from app.models.integration import DeletionConflictResolution as Del
from app.models.integration import Direction
from app.models.integration import UpdateConflictResolution as Upd
from app.sync.conflicts import SyncAction, UpdateFacts, decide_missing_destination, decide_update

A = SyncAction


@pytest.mark.parametrize(
    ("is_coupled", "only_coupled", "resolution", "expected"),
    [
        (False, True, Del.none, A.ignore),
        (False, False, Del.none, A.insert),
        (True, True, Del.restore_records, A.insert),
        (True, False, Del.remove_coupling, A.uncouple),
        (True, True, Del.none, A.fail),
    ],
)
def test_missing_destination(
    is_coupled: bool, only_coupled: bool, resolution: Del, expected: SyncAction
) -> None:
    decision = decide_missing_destination(
        is_coupled=is_coupled, only_coupled=only_coupled, resolution=resolution,
        destination="product",
    )  # fmt: skip
    assert decision.action is expected
    if expected is A.fail:
        assert "coupled to a deleted product record" in decision.message


PAIR = [("description", "name")]


@pytest.mark.parametrize(
    ("direction", "source", "dest", "bidi", "conflicting", "changes", "resolution", "expected"),
    [
        (Direction.to_crm, False, True, True, PAIR, True, Upd.none, A.unchanged),
        (Direction.to_crm, True, False, True, PAIR, True, Upd.none, A.modify),
        (Direction.to_crm, True, False, True, [], False, Upd.none, A.unchanged),
        (Direction.to_crm, True, True, True, PAIR, True, Upd.none, A.fail),
        (Direction.from_crm, True, True, True, PAIR, True, Upd.none, A.fail),
        (Direction.to_crm, True, True, True, PAIR, True, Upd.get_update_from_crm, A.skip),
        (Direction.from_crm, True, True, True, PAIR, True, Upd.get_update_from_crm, A.modify),
        (Direction.to_crm, True, True, True, PAIR, True, Upd.send_update_to_crm, A.modify),
        (Direction.from_crm, True, True, True, PAIR, True, Upd.send_update_to_crm, A.skip),
        # both changed but the bidirectional values agree: no conflict
        (Direction.to_crm, True, True, True, [], True, Upd.none, A.modify),
        # a one-way mapping never has update conflicts
        (Direction.to_crm, True, True, False, PAIR, True, Upd.none, A.modify),
    ],
)
def test_update_decisions(
    direction: Direction, source: bool, dest: bool, bidi: bool,
    conflicting: list[tuple[str, str]], changes: bool, resolution: Upd, expected: SyncAction,
) -> None:  # fmt: skip
    facts = UpdateFacts(direction, source, dest, bidi, conflicting, changes)
    decision = decide_update(facts, resolution=resolution, table="item", entity="product")
    assert decision.action is expected
    if expected is A.fail:
        assert "description field on the item table" in decision.message
        assert "name field on the product table is bi-directional" in decision.message
