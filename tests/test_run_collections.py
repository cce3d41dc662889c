"""A run tunes Python's cyclic garbage collector while it reads and plans (issue 12: full
collections kept walking the growing heap of desired users and changes, a quarter of the
planning CPU at 100,000 users) and puts it back afterwards, whatever happens."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from genesys_prov.config import load_config
from genesys_prov.sync.context import (
    RUN_FULL_COLLECTION_THRESHOLD,
    fewer_full_collections,
)

from .conftest import write_config


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_full_collections_wait_while_open_and_are_restored(default_thresholds):
    with fewer_full_collections():
        assert gc.get_threshold() == (700, 10, RUN_FULL_COLLECTION_THRESHOLD)
        assert gc.isenabled()
    assert gc.get_threshold() == default_thresholds


def test_thresholds_are_restored_when_the_run_fails(default_thresholds):
    with pytest.raises(RuntimeError), fewer_full_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == default_thresholds


def test_a_nested_run_leaves_the_raised_threshold_alone(default_thresholds):
    with fewer_full_collections():
        with fewer_full_collections():
            assert gc.get_threshold()[2] == RUN_FULL_COLLECTION_THRESHOLD
        assert gc.get_threshold()[2] == RUN_FULL_COLLECTION_THRESHOLD
    assert gc.get_threshold() == default_thresholds


def test_a_higher_threshold_set_by_the_host_is_kept(default_thresholds):
    gc.set_threshold(700, 10, 50_000)
    with fewer_full_collections():
        assert gc.get_threshold()[2] == 50_000
    assert gc.get_threshold()[2] == 50_000


def test_planning_has_fewer_full_collections_and_applying_the_default(
        sandbox, tmp_path, default_thresholds, monkeypatch):
    """Reading and planning hold full collections back; applying does not (its requests'
    short-lived cycles must keep being cleared)."""
    from genesys_prov.sync import run as running

    seen: dict[str, int] = {}
    planned, apply = running._planned, running._apply_and_watch

    def watch_plan(*args, **kwargs):
        seen["plan"] = gc.get_threshold()[2]
        return planned(*args, **kwargs)

    def watch_apply(*args, **kwargs):
        seen["apply"] = gc.get_threshold()[2]
        return apply(*args, **kwargs)

    monkeypatch.setattr(running, "_planned", watch_plan)
    monkeypatch.setattr(running, "_apply_and_watch", watch_apply)
    config = load_config(write_config(tmp_path, sandbox.config()))
    running.run_sync(config)
    assert seen == {"plan": RUN_FULL_COLLECTION_THRESHOLD, "apply": default_thresholds[2]}
    assert gc.get_threshold() == default_thresholds
