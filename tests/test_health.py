"""`/healthz` and `/readyz`: what a load balancer probes, on both databases, with and without Redis."""
import logging
import time

import pytest

from rentpe import create_app
from rentpe import health
from rentpe.health import Readiness

from .conftest import REDIS_TEST_URL

# Nothing listens here: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_POSTGRESQL = "postgresql://127.0.0.1:1/nothing"


def test_healthz_answers_without_touching_anything(client, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok\n")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert not [r for r in caplog.records if r.name.startswith(("rentpe", "sqlalchemy"))]


def test_readyz_names_what_it_checked(client):
    response = client.get("/readyz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "database: ok\n")


@pytest.mark.parametrize("app_overrides", [{"REDIS_URL": REDIS_TEST_URL}])
def test_readyz_checks_redis_when_configured(client):
    response = client.get("/readyz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "database: ok\nredis: ok\n")


@pytest.mark.parametrize("app_overrides", [{"REDIS_URL": DEAD_REDIS}])
def test_readyz_is_503_naming_redis_when_redis_is_down(client, app):
    started = time.monotonic()
    response = client.get("/readyz")
    assert (response.status_code, response.get_data(as_text=True)) == (503, "redis: unreachable\n")
    assert time.monotonic() - started < 3
    assert client.get("/healthz").status_code == 200  # the process itself is fine


def test_readyz_is_503_naming_the_database_when_it_is_down(_tmpdir):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": DEAD_POSTGRESQL,
                      "REDIS_URL": None, "RATELIMIT_ENABLED": False})
    response = app.test_client().get("/readyz")
    assert (response.status_code, response.get_data(as_text=True)) == (503, "database: unreachable\n")
    assert app.test_client().get("/healthz").status_code == 200


def test_a_database_that_comes_back_is_ready_again(app):
    checker = Readiness(app.config["SQLALCHEMY_DATABASE_URI"], None)
    assert checker.failures() == []
    checker.engine.dispose()  # as a restart of the database would leave it
    assert checker.failures() == []
    assert Readiness(DEAD_POSTGRESQL, None).failures() == ["database"]


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True, "REDIS_URL": REDIS_TEST_URL}])
def test_probes_every_second_are_cheap_never_limited_and_never_logged(client, app, caplog):
    caplog.set_level(logging.INFO)
    client.get("/readyz")
    started = time.perf_counter()
    for _ in range(100):
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
    per_probe = (time.perf_counter() - started) / 200
    assert per_probe < 0.02, per_probe
    assert not [r for r in caplog.records if r.name == "rentpe.access"]
    # One connection each to the database and Redis, kept: not one per probe.
    checker = health._checker_for(app)
    assert checker.engine.pool.size() == 1 and checker.engine.pool.checkedin() == 1
    assert len(checker.redis.connection_pool._available_connections) == 1


def test_nginx_and_the_readme_use_them():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    nginx = (root / "deploy" / "nginx.conf").read_text()
    assert "location = /healthz" in nginx and "location = /readyz" in nginx
    readme = (root / "README.md").read_text()
    assert "/healthz" in readme and "/readyz" in readme
