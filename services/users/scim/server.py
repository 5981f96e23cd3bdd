"""SCIM over HTTP beside the users service's gRPC port: scim2-server's WSGI application on
Steward's storage, behind bearer-token auth, served by waitress (threads, HTTP/1.1 keep-alive)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from scim2_models import (
    Context,
    ForbiddenException,
    ListResponse,
    PatchOp,
    Resource,
    ResponseParameters,
    SCIMException,
    ScimProvider,
    SearchRequest,
    UnauthorizedException,
)
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.utils import parametrize
from waitress import wasyncore
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from services.runtime import metrics, tracing
from services.runtime.auth import Principal, reset_principal, set_principal, verify_token
from services.runtime.db import Database
from services.runtime.errors import Unauthenticated
from services.runtime.logging import get_logger
from services.users.config import UsersConfig
from services.users.domain.permissions import SCOPE_SCIM
from services.users.scim.hygiene import check_request
from services.users.scim.schemas import provider
from services.users.scim.storage import StewardStorage

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = get_logger("steward.scim")
BASE_PATH = "/scim/v2"


class StewardScimService(ScimService):
    def __init__(self, provider: ScimProvider) -> None:
        super().__init__(provider)
        # scim2-server parametrizes pydantic generics per request (ListResponse[User], ...), and
        # pydantic caches them only while something holds them: without these references each
        # was rebuilt after every garbage collection, ~2.5 ms a request (py-spy, bench/scim.py).
        models: list[Any] = self.get_models()
        every: Any = Union[tuple(models)]  # noqa: UP007
        kinds: list[Any] = [SearchRequest, ResponseParameters, PatchOp, ListResponse]
        self._generics = [parametrize(kind, every) for kind in (SearchRequest, ListResponse)]
        self._generics += [parametrize(kind, model) for kind in kinds for model in models]

    def patch_response(
        self, base_url: str, resource: Resource[Any], response_parameters: ResponseParameters[Any]
    ) -> ScimResponse:
        """200 with the patched resource, never 204: Okta reads the user back from the PATCH reply
        (RFC 7644 §3.5.2 allows both)."""
        return self.resource_response(
            self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters
        )


class StewardScimApplication(WSGIApplication):
    """Who may call: a Steward JWT carrying the users.scim scope (401 without a valid token, 403
    without the scope). The caller is the acting principal of every domain operation."""

    def __init__(self, db: Database, config: UsersConfig, jwt_secret: str) -> None:
        scim = provider()
        super().__init__(StewardStorage(db, config, scim), scim, StewardScimService(scim))
        self._secret = jwt_secret
        self._local = threading.local()

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedException(detail="send Authorization: Bearer <token> (a token with the users.scim scope)")
        try:
            principal = verify_token(self._secret, token.strip())
        except Unauthenticated as error:
            raise UnauthorizedException(detail=error.message) from error
        if not principal.has_scope(SCOPE_SCIM):
            raise ForbiddenException(detail=f"{principal.subject} lacks the {SCOPE_SCIM} scope")
        self._local.principal = principal

    def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        self._local.principal = None
        if self.needs_auth(request):
            self.check_auth(request)
        check_request(request.path, request.query, request.body)
        principal: Principal | None = self._local.principal
        token = set_principal(principal)
        try:
            return self.handler.handle(request)
        finally:
            reset_principal(token)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if not isinstance(exception, SCIMException):
            log.error("scim_failed", method=request.method, path=request.path, exc_info=exception)
        return self.service.error_response(exception)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Under /scim/v2 only; each request logged and counted like a gRPC call."""
        path = environ.get("PATH_INFO", "")
        if not (path == BASE_PATH or path.startswith(BASE_PATH + "/")):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"SCIM is served under {BASE_PATH}\n".encode()]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/scim"
        environ["PATH_INFO"] = path.removeprefix("/scim")
        started = time.perf_counter()
        status: list[str] = []

        def record(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        method = f"SCIM {environ.get('REQUEST_METHOD', '')} {_endpoint(path)}"
        try:
            # Traced like a gRPC call: the events its transaction writes carry this span's context.
            with tracing.span(method, [environ.get("HTTP_TRACEPARENT", "")]):
                return list(super().__call__(environ, record))
        finally:
            elapsed = time.perf_counter() - started
            code = status[0] if status else "500"
            metrics.REQUESTS.labels("users", method, code).inc()
            metrics.LATENCY.labels("users", method).observe(elapsed)
            log.info("scim", method=method, status=code, duration_ms=round(elapsed * 1000, 2))


def _endpoint(path: str) -> str:
    """/scim/v2/Users/123 -> /Users/{id}: a bounded set of metric labels."""
    parts = path.removeprefix(BASE_PATH).strip("/").split("/")
    return "/" + "/".join([parts[0], *(["{id}"] if len(parts) > 1 else [])])


class ScimServer:
    """The HTTP server, as a background worker of the users service (started and drained with it)."""

    def __init__(self, db: Database, config: UsersConfig, host: str, jwt_secret: str) -> None:
        self._app = StewardScimApplication(db, config, jwt_secret)
        self._host = host
        self._config = config.scim
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self) -> None:
        # Our own dispatcher, its threads started once the port is bound: waitress starts them
        # first, and a port already taken would leave them running.
        dispatcher = ThreadedTaskDispatcher()
        self._server = create_server(
            self._app,
            _dispatcher=dispatcher,
            host=self._host,
            port=self._config.port,
            threads=self._config.threads,
            ident="steward-scim",
            clear_untrusted_proxy_headers=True,
            channel_timeout=60,
        )
        dispatcher.set_thread_count(self._config.threads)
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._serve, name="scim-http", daemon=True)
        self._thread.start()
        log.info("scim_serving", url=f"http://{self._host}:{self.port}{BASE_PATH}")

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the sockets closed under the loop while stopping
            self._server.run()

    def stop(self, timeout: float) -> None:
        if self._server is None:
            return
        self._server.close()  # no new connections
        self._server.task_dispatcher.shutdown(cancel_pending=False, timeout=timeout)
        wasyncore.close_all(self._server._map)
        if self._thread is not None:
            self._thread.join(timeout)
