from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_an_item_is_created_then_read_back(client: TestClient) -> None:
    created = client.post("/items/", json={"name": "hammer"})

    assert created.status_code == 201
    item = created.json()
    assert client.get(f"/items/{item['id']}").json() == {"id": item["id"], "name": "hammer"}
    assert item in client.get("/items/").json()


def test_a_missing_item_is_404(client: TestClient) -> None:
    assert client.get(f"/items/{2**31 - 1}").status_code == 404


# JSON as sent.
@pytest.mark.parametrize("name", ['""', '"' + "x" * 101 + '"', r'"nul\u0000inside"'])
def test_a_name_the_database_cannot_hold_is_refused(client: TestClient, name: str) -> None:
    response = client.post("/items/", content='{"name": ' + name + "}", headers={"Content-Type": "application/json"})

    assert response.status_code == 422
