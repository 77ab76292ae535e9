"""``/docs``: Swagger UI from the installed ``swagger-ui-bundle-v2`` package, no CDN.

The page, its script, style sheet and icon are all served by the service (under
``/docs/assets/``), so the API pages work on a machine without internet access. The
"Authorize" dialog signs in with a user name and password: the OpenAPI document declares
the OAuth2 password flow against ``/api/v1/auth/token`` (``app.api.deps``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get(DOCS_URL)
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Salesbridge API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # Keep the token across reloads of the page; the dialog's fields stay simple.
        swagger_ui_parameters={
            "persistAuthorization": True,
            "displayRequestDuration": True,
            "validatorUrl": None,  # else the page asks validator.swagger.io about the spec
        },
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def install_docs_page(app: FastAPI) -> None:
    """The page, its redirect helper and its files (FastAPI's own CDN page is turned off)."""
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
