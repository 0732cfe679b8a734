"""ratings: placeholder until the service is built; every route answers 501 Problem Details."""

from __future__ import annotations

from litestar import Litestar, delete, get, post

from bookrec_common.errors import NotImplementedYet
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings


class RatingsSettings(ServiceSettings):
    service_name: str = "ratings"


@post("/books/{book_id:str}/rate", status_code=501)
async def not_built_0() -> None:
    raise NotImplementedYet("POST /books/{book_id:str}/rate is not built yet")


@get("/books/{book_id:str}/ratings")
async def not_built_1() -> None:
    raise NotImplementedYet("GET /books/{book_id:str}/ratings is not built yet")


@delete("/books/{book_id:str}/ratings/{user_id:str}", status_code=501)
async def not_built_2() -> None:
    raise NotImplementedYet("DELETE /books/{book_id:str}/ratings/{user_id:str} is not built yet")


@get("/users/{user_id:str}/ratings")
async def not_built_3() -> None:
    raise NotImplementedYet("GET /users/{user_id:str}/ratings is not built yet")


def create_app() -> Litestar:
    return create_service_app(RatingsSettings(), [not_built_0, not_built_1, not_built_2, not_built_3])
