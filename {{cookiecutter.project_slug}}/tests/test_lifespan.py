from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.lifespan import YOUNG_COLLECTION_THRESHOLD
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


def test_startup_objects_are_kept_out_of_garbage_collection(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        frozen_while_serving = gc.get_freeze_count()

    assert frozen_while_serving > 0


def test_shutdown_gives_them_back(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        pass

    assert gc.get_freeze_count() == 0


def test_young_objects_are_collected_less_often_while_serving(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        threshold_while_serving = gc.get_threshold()[0]

    assert threshold_while_serving == YOUNG_COLLECTION_THRESHOLD


def test_shutdown_restores_the_collection_thresholds(settings: Settings) -> None:
    before = gc.get_threshold()
    with TestClient(create_app(settings)):
        pass

    assert gc.get_threshold() == before
