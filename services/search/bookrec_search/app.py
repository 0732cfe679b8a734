"""search: placeholder until the service is built; every route answers 501 Problem Details."""

from __future__ import annotations

from litestar import Litestar, delete, get, post

from bookrec_common.errors import NotImplementedYet
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings


class SearchSettings(ServiceSettings):
    service_name: str = "search"


@post("/search", status_code=501)
async def not_built_0() -> None:
    raise NotImplementedYet("POST /search is not built yet")


@get("/search")
async def not_built_1() -> None:
    raise NotImplementedYet("GET /search is not built yet")


@post("/search/advanced", status_code=501)
async def not_built_2() -> None:
    raise NotImplementedYet("POST /search/advanced is not built yet")


@get("/search/shard/{prefix:str}")
async def not_built_3() -> None:
    raise NotImplementedYet("GET /search/shard/{prefix:str} is not built yet")


@get("/search/autocomplete")
async def not_built_4() -> None:
    raise NotImplementedYet("GET /search/autocomplete is not built yet")


def create_app() -> Litestar:
    return create_service_app(SearchSettings(), [not_built_0, not_built_1, not_built_2, not_built_3, not_built_4])
