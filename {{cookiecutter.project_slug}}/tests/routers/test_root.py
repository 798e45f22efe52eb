from __future__ import annotations

from fastapi.testclient import TestClient


def test_root_says_hello(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {"message": "Hello, World!"}
