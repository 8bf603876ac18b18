"""The same FastAPI app served by N Ray Serve replicas behind Serve's proxy, on the same host and port:
`moviegenre serve --replicas N`. Each replica is a Ray actor that loads the index once (its vectors are
memory-mapped, so replicas on one machine share them); Serve restarts a replica that dies, and the proxy
sends requests to the ones alive meanwhile. Every answer names its replica in the REPLICA_HEADER.

RAY_ADDRESS names a cluster to deploy on; unset, a Ray is started here. Every node must see the index folder
at the same path (scripts/ has a cluster example with the index on a shared read-only volume).
"""
from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("moviegenre")
REPLICA_HEADER = "X-Moviegenre-Replica"
APP_NAME = "moviegenre"


class ReplicasError(RuntimeError):
    """Serve could not put the app up (its port taken, the cluster unreachable): a message for the person."""


def replica_app(settings: Settings) -> FastAPI:
    """Built on each replica when it starts (Serve calls it there), not pickled from the driver."""
    from ray import serve

    from service.api.app import create_app

    app = create_app(settings)
    replica = serve.get_replica_context().replica_id.unique_id

    @app.middleware("http")
    async def name_the_replica(request, call_next):
        response = await call_next(request)
        response.headers[REPLICA_HEADER] = replica
        return response

    return app


class Replica:
    """The deployment's class: Serve builds the app on the replica, from the settings it was bound with."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.built: FastAPI | None = None  # not `app`: serve.ingress gives the class a property of that name

    def __serve_build_asgi_app__(self) -> FastAPI:
        self.built = replica_app(self.settings)
        return self.built

    def check_health(self) -> None:
        """Serve's health check (every 2 s): the replica's readiness, as /readyz says it. A replica whose index
        is missing or damaged is restarted by Serve and gets no traffic meanwhile."""
        if self.built is not None and self.built.state.runtime is None:
            raise RuntimeError(f"not ready: {self.built.state.unavailable or 'no index loaded'}")


def replica_settings(settings: Settings, replicas: int) -> Settings:
    """What each replica is bound with: LLM_CONCURRENCY is each LLM server's parallel slots, for the whole service,
    so every replica gets its share of them, as the Ray file engine's actors do (batch/ray_engine.py); with more
    replicas than slots, each keeps one (a slot cannot be divided) and the servers may get up to `replicas`
    questions at once: said in the log, where the operator reads it."""
    slots = settings.llm.concurrency
    if settings.llm.backend == "none" or replicas <= 1:
        return settings
    if replicas > slots:
        log.warning("%d replicas share LLM_CONCURRENCY=%d slots per LLM server: each replica keeps one, so each "
                    "server may get %d questions at once (raise LLM_CONCURRENCY to the servers' slots or serve "
                    "fewer replicas)", replicas, slots, replicas)
    return settings.replace(llm_concurrency=max(1, slots // replicas))


def application(replicas: int, settings: Settings | None = None, cpus_per_replica: float = 0.5):
    """The Serve application: the app's deployment with its replicas, each bound to its share of the settings."""
    from ray import serve

    ingress = serve.deployment(serve.ingress()(Replica), name=APP_NAME, num_replicas=replicas,
                               ray_actor_options={"num_cpus": cpus_per_replica},
                               health_check_period_s=2, health_check_timeout_s=30)
    return ingress.bind(replica_settings(settings or Settings(), replicas))


def build(args: dict):
    """Serve's application builder (`import_path: service.api.replicas:build` in a Serve config or a KubeRay
    RayService): the settings come from the environment of the cluster's pods."""
    return application(int(args.get("replicas", 2)), cpus_per_replica=float(args.get("cpus_per_replica", 0.5)))


def serve_replicas(settings: Settings, replicas: int, cpus_per_replica: float = 0.5) -> None:
    """Deploy on $RAY_ADDRESS or a Ray started here, on the settings' host and port, and block until
    interrupted."""
    import ray
    from ray import serve

    address = os.environ.get("RAY_ADDRESS") or None
    if address is None:
        _refuse_a_taken_port(settings.service.host, settings.service.port)
    ray.init(address=address, include_dashboard=False, configure_logging=False)
    try:
        serve.start(http_options={"host": settings.service.host, "port": settings.service.port})
        serve.run(application(replicas, settings, cpus_per_replica), name=APP_NAME, route_prefix="/", blocking=True)
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[-1]
        service = settings.service
        raise ReplicasError(f"Ray Serve could not serve on {service.host}:{service.port}: {reason}") from None
    finally:
        serve.shutdown()
        ray.shutdown()


def _refuse_a_taken_port(host: str, port: int) -> None:
    """Serve's proxy would fail on a taken port only after Ray started, with a page of tracebacks."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ReplicasError(f"cannot serve on {host}:{port}: {exc.strerror} "
                                "(set MOVIEGENRE_PORT to a free port)") from None
