"""`/dashboard`: the internal dashboard, plain HTML, CSS and JavaScript served by the service itself.

No build step and nothing loaded from elsewhere: the page reads the service's own JSON API with a
`read` key that the browser keeps for the tab's session only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PATH = "/dashboard"
# The page is plain files: a policy that lets it load nothing but them, and talk to nothing but us.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def install(app: FastAPI) -> None:
    app.mount(f"{PATH}/assets", StaticFiles(directory=STATIC), name="dashboard-assets")
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get(PATH, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers=HEADERS)
