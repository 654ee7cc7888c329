"""`/docs` and `/redoc` work without internet: every script, style and icon they load is the service's own."""

from __future__ import annotations

import re

import httpx
import pytest

# Any address with a scheme or a host (`https://cdn...`, `//fonts...`) in the page's markup.
EXTERNAL = re.compile(r"""(?:[a-z][a-z0-9+.-]*:)?//[^\s"'<>]+""", re.IGNORECASE)
LOADED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize(("page", "needs"), [("/docs", {".js", ".css"}), ("/redoc", {".js"})])
async def test_the_page_loads_only_the_services_own_assets(
    client: httpx.AsyncClient, page: str, needs: set[str]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert EXTERNAL.findall(response.text) == []
    assets = LOADED.findall(response.text)
    assert needs <= {asset[asset.rfind(".") :] for asset in assets}, assets
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert CONTENT_TYPES[asset[asset.rfind(".") :]] in served.headers["content-type"], asset
        assert served.content, asset


async def test_swagger_ui_reads_the_openapi_3_1_document(client: httpx.AsyncClient) -> None:
    """Swagger UI renders OpenAPI 3.1, the version the service publishes, from its version 5 on."""
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    page = (await client.get("/docs")).text
    assert "url: '/openapi.json'" in page
    bundle = (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version is not None
    assert int(version.group(1)) >= 5


async def test_the_pages_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
