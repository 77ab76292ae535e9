"""What the logs show a person: secrets masked but flags and counts readable, and quiet
under a progress bar."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from app.logs import _redact, quiet_under_a_progress_bar


def test_redaction_masks_secret_text_but_not_flags_or_counts() -> None:
    event = {
        "event": "user_sign_in_changed", "password": "hunter2hunter2", "client_secret": "s3cr3t",
        "authorization": "Bearer eyJ...", "is_key_only": True, "access_keys": 2,
        "token_minutes": 30, "user_name": "alice",
    }  # fmt: skip
    assert _redact(None, "info", event) == {
        "event": "user_sign_in_changed", "password": "***", "client_secret": "***",
        "authorization": "***", "is_key_only": True, "access_keys": 2, "token_minutes": 30,
        "user_name": "alice",
    }  # fmt: skip


@pytest.fixture
def root_at_info() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    yield root
    root.setLevel(saved)


def test_under_a_progress_bar_only_warnings_show(
    root_at_info: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log = structlog.stdlib.get_logger("salesbridge.test")
    with caplog.at_level(logging.INFO), quiet_under_a_progress_bar():
        assert logging.getLogger().level == logging.WARNING
        logging.getLogger("httpx").info("HTTP Request: GET ... 200")
        log.info("request")
        logging.getLogger("salesbridge.jobs").warning("job_failed")
    assert root_at_info.level == logging.INFO  # back to what it was
    assert [record.getMessage() for record in caplog.records] == ["job_failed"]
