from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }}.serving import (
    YOUNG_COLLECTION_THRESHOLD,
    tune_garbage_collector,
)


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_startup_objects_are_kept_out_of_garbage_collection() -> None:
    tune_garbage_collector()

    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("collector_restored")
def test_young_objects_are_collected_less_often() -> None:
    tune_garbage_collector()

    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD


@pytest.mark.usefixtures("collector_restored")
def test_older_generations_keep_their_thresholds() -> None:
    before = gc.get_threshold()[1:]
    tune_garbage_collector()

    assert gc.get_threshold()[1:] == before
