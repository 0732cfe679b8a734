"""recommendation: placeholder until the service is built; every route answers 501 Problem Details."""

from __future__ import annotations

from litestar import Litestar, delete, get, post

from bookrec_common.errors import NotImplementedYet
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings


class RecommendationSettings(ServiceSettings):
    service_name: str = "recommendation"


@get("/recommendations/{user_id:str}")
async def not_built_0() -> None:
    raise NotImplementedYet("GET /recommendations/{user_id:str} is not built yet")


@post("/recommendations/refresh", status_code=501)
async def not_built_1() -> None:
    raise NotImplementedYet("POST /recommendations/refresh is not built yet")


@post("/recommendations/invalidate/{user_id:str}", status_code=501)
async def not_built_2() -> None:
    raise NotImplementedYet("POST /recommendations/invalidate/{user_id:str} is not built yet")


def create_app() -> Litestar:
    return create_service_app(RecommendationSettings(), [not_built_0, not_built_1, not_built_2])
