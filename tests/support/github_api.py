"""A GitHub REST API server for tests: the project's only test double.

Every request is first checked against GitHub's official OpenAPI description (npm `@octokit/openapi`,
fetched by tools/test-material.sh). A path or method the description lacks, a bad path or query
parameter, or a body the operation's schema refuses is answered 404/400 and recorded in `rejections`;
tests assert that list is empty. Response bodies start from the description's own examples, with every
URL moved onto this server, and are checked against the documented response schema as well, so the
fake cannot drift from what GitHub sends.

State is one repository whose pull requests hold issue comments in memory (enough for PyGithub's
find-and-edit PR comment flow), and its deployments with their statuses.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT4, DRAFT202012

COMMENT_BODY_LIMIT = 65536  # characters; GitHub answers 422 above it
ACTIONS_BOT = "github-actions[bot]"
INTEGRATION_FORBIDDEN = "Resource not accessible by integration"
# where the description is registered for $ref resolution
_DOC_URI = "urn:github-openapi"

Json = Any
Response = tuple[int, dict[str, str], Json]
Params = dict[tuple[str, str], str]


class Rejection(Exception):
    """A request the OpenAPI description does not allow."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Call:
    """A request that passed the description: its operation and its decoded parameters."""

    method: str
    template: str
    pointer: str  # JSON pointer of the operation inside the description
    operation: dict[str, Any]
    path_params: dict[str, Any]
    query: dict[str, Any]
    body: Json


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    # OpenAPI 3.0 says "may be null" with `nullable: true`, which JSON Schema does not know. GitHub also
    # puts it beside allOf/anyOf/$ref (no `type`), meaning the same thing, so wrap those in anyOf.
    if node.get("nullable") is not True:
        return node
    node = {k: v for k, v in node.items() if k != "nullable"}
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        return node
    return {"anyOf": [{"type": "null"}, node]}


# Only formats checkable without extra packages; `date-time` guards `since`-style parameters.
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value
    ):
        return False
    return bool(datetime.fromisoformat(value))


def _is_example_object(node: Any) -> bool:
    fields = ("summary", "description", "value", "externalValue")
    return (
        isinstance(node, dict)
        and "value" in node
        and all(k in fields or k.startswith("x-") for k in node)
    )


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query or path string as the JSON value its schema describes (left as is when it is not one)."""
    types = schema.get("type")
    kind = (
        next((t for t in types if t != "null"), None)
        if isinstance(types, list)
        else types
    )
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind == "array":
        return [_coerce(v, schema.get("items", {})) for v in value.split(",")]
    return value


class OpenApi:
    """GitHub's REST description: routes requests to operations and validates against its schemas."""

    def __init__(self, path: Path) -> None:
        # The hook rewrites `nullable` bottom-up while parsing: one pass over a 13 MB document.
        self.doc: dict[str, Any] = json.loads(
            path.read_text(encoding="utf-8"), object_hook=_nullable
        )
        three_oh = str(self.doc["openapi"]).startswith("3.0")
        # 3.0 schemas are a JSON Schema draft 4/5 dialect
        spec = DRAFT4 if three_oh else DRAFT202012
        self._validator_cls = (
            jsonschema.Draft4Validator if three_oh else jsonschema.Draft202012Validator
        )
        self._registry: Registry[Any] = Registry().with_resource(
            _DOC_URI, spec.create_resource(self.doc)
        )
        self._validators: dict[str, Any] = {}
        routes = []
        for template in self.doc["paths"]:
            parts = re.split(r"(\{[^}]+\})", template)
            pattern = "".join(
                re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(parts)
            )
            names = [p[1:-1] for p in parts[1::2]]
            # OpenAPI: concrete paths win over templated ones (issues/comments before issues/{number}).
            rank = tuple("{" in seg for seg in template.split("/"))
            routes.append((rank, template, re.compile(pattern), names))
        self._routes = sorted(routes, key=lambda r: r[0])

    def at(self, pointer: str) -> Any:
        """The node at a JSON pointer into the description."""
        node: Any = self.doc
        for seg in pointer.split("/")[1:]:
            seg = seg.replace("~1", "/").replace("~0", "~")
            node = node[int(seg)] if isinstance(node, list) else node[seg]
        return node

    def deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follows local $refs; returns the node and its JSON pointer."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            pointer = node["$ref"].removeprefix("#")
            node = self.at(pointer)
        return node, pointer

    def errors(self, pointer: str, instance: Json) -> str | None:
        """The best validation error of `instance` against the schema at `pointer`, or None."""
        validator = self._validators.get(pointer)
        if validator is None:
            ref = f"{_DOC_URI}#{urllib.parse.quote(pointer, safe='/~')}"
            validator = self._validators[pointer] = self._validator_cls(
                {"$ref": ref}, registry=self._registry, format_checker=_FORMATS
            )
        error = best_match(validator.iter_errors(instance))
        if error is None:
            return None
        return f"{error.message[:300]} (at {error.json_path})"

    def route(
        self, method: str, path: str
    ) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        found = next(
            (
                (t, m, n)
                for _, t, regex, n in self._routes
                if (m := regex.fullmatch(path))
            ),
            None,
        )
        if found is None:
            raise Rejection(404, f"no path in the description matches {path}")
        template, match, names = found
        operation = self.doc["paths"][template].get(method.lower())
        if operation is None:
            raise Rejection(404, f"{method} is not an operation of {template}")
        pointer = f"/paths/{_escape(template)}/{method.lower()}"
        raw = {
            n: urllib.parse.unquote(v)
            for n, v in zip(names, match.groups(), strict=True)
        }
        return template, pointer, operation, raw

    def parameters(
        self, template: str, pointer: str, operation: dict[str, Any]
    ) -> Params:
        """(in, name) -> JSON pointer of each parameter's schema; operation-level ones override."""
        found: Params = {}
        item_pointer = f"/paths/{_escape(template)}"
        for owner, owner_pointer in (
            (self.doc["paths"][template], item_pointer),
            (operation, pointer),
        ):
            for i, ref in enumerate(owner.get("parameters", [])):
                param, param_pointer = self.deref(
                    ref, f"{owner_pointer}/parameters/{i}"
                )
                found[(param["in"], param["name"])] = f"{param_pointer}/schema"
        return found

    def _parameter(self, schema_pointer: str, value: str) -> tuple[Any, str | None]:
        """A path or query string as its schema's type, and what is wrong with it."""
        coerced = _coerce(value, self.deref(self.at(schema_pointer), schema_pointer)[0])
        return coerced, self.errors(schema_pointer, coerced)

    def check_request(
        self, method: str, target: str, content_type: str | None, raw_body: bytes
    ) -> Call:
        """Raises Rejection unless the description allows this request."""
        url = urllib.parse.urlsplit(target)
        template, pointer, operation, raw_path = self.route(method, url.path)
        params = self.parameters(template, pointer, operation)
        path_params = self._path_params(params, raw_path)
        query = self._query(params, url.query, f"{method} {template}")
        body = self._body(
            operation, pointer, content_type, raw_body, f"{method} {template}"
        )
        return Call(method, template, pointer, operation, path_params, query, body)

    def _path_params(self, params: Params, raw_path: dict[str, str]) -> dict[str, Any]:
        path_params = {}
        for name, value in raw_path.items():
            path_params[name], problem = self._parameter(params[("path", name)], value)
            if problem:
                raise Rejection(404, f"path parameter {name}={value!r}: {problem}")
        return path_params

    def _query(self, params: Params, raw_query: str, operation: str) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
            if ("query", name) not in params:
                raise Rejection(
                    400,
                    f"query parameter {name!r} is not a parameter of {operation}",
                )
            query[name], problem = self._parameter(params[("query", name)], value)
            if problem:
                raise Rejection(400, f"query parameter {name}={value!r}: {problem}")
        for (where, name), schema_pointer in params.items():
            required = self.at(schema_pointer.removesuffix("/schema")).get("required")
            if where == "query" and required and name not in query:
                raise Rejection(400, f"required query parameter {name!r} is missing")
        return query

    def _body(
        self,
        operation: dict[str, Any],
        pointer: str,
        content_type: str | None,
        raw_body: bytes,
        said: str,
    ) -> Json:
        """The request's JSON body, checked against the operation's `requestBody`."""
        request_body, body_pointer = self.deref(
            operation.get("requestBody"), f"{pointer}/requestBody"
        )
        if not raw_body:
            if request_body and request_body.get("required"):
                raise Rejection(400, f"{said} requires a request body")
            return None
        if not request_body:
            raise Rejection(400, f"{said} takes no request body")
        media = (content_type or "").split(";")[0].strip()
        if media not in request_body["content"]:
            allowed = sorted(request_body["content"])
            raise Rejection(400, f"content type {media!r} is not one of {allowed}")
        try:
            body: Json = json.loads(raw_body)
        except ValueError as exc:
            raise Rejection(400, f"Problems parsing JSON: {exc}") from None
        problem = self.errors(f"{body_pointer}/content/{_escape(media)}/schema", body)
        if problem:
            raise Rejection(400, f"request body: {problem}")
        return body

    def _response(self, call: Call, status: int) -> tuple[dict[str, Any], str] | None:
        responses = call.operation["responses"]
        key = next(
            (
                k
                for k in (str(status), f"{str(status)[0]}XX", "default")
                if k in responses
            ),
            None,
        )
        if key is None:
            return None
        response, pointer = self.deref(
            responses[key], f"{call.pointer}/responses/{key}"
        )
        if "application/json" not in response.get("content", {}):
            return None
        return response["content"][
            "application/json"
        ], f"{pointer}/content/application~1json"

    def check_response(self, call: Call, status: int, body: Json) -> str | None:
        # The description does not list every status GitHub sends (PATCH of a comment documents no
        # 403, yet a read-only token gets one): only documented statuses can be checked.
        found = self._response(call, status)
        if found is None or "schema" not in found[0]:
            return None
        return self.errors(f"{found[1]}/schema", body)

    def example(self, call: Call, status: int) -> Json:
        """A deep copy of the first documented example response of the operation."""
        found = self._response(call, status)
        assert found is not None and found[0].get("examples"), (
            f"no example for {call.template} {status}"
        )
        node: Any = next(iter(found[0]["examples"].values()))
        # Examples nest: {"$ref"} -> Example Object {"summary", "value"} -> sometimes {"$ref"} again.
        for _ in range(4):
            node = self.deref(node, "")[0]
            if not _is_example_object(node):
                break
            node = node["value"]
        return copy.deepcopy(node)


@functools.cache
def load_openapi(path: Path) -> OpenApi:
    """The description is large (13 MB): parse it once per process."""
    return OpenApi(path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    app: GitHubApiServer


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        app = self.server.app
        try:
            status, headers, payload = app.handle(
                self.command, self.path, self.headers, raw
            )
        # a bug in the test server: make the test fail, not hang up
        except Exception as exc:
            app.rejections.append(
                f"{self.command} {self.path}: test server error {exc!r}"
            )
            status, headers, payload = (
                500,
                {},
                {"message": f"test server error: {exc!r}"},
            )
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keeps pytest output clean


class GitHubApiServer:
    """An OpenAPI-checked GitHub REST API for one repository and its pull requests' comments.

    Switches (reset() restores them; a session-wide server serves many tests):
      forbid_writes   POST/PATCH answer 403 "Resource not accessible by integration" (fork PR token)
      user_forbidden  GET /user answers that same 403, as it does for an Actions installation token
      login           who the token acts as: author of comments created through the API
    """

    def __init__(
        self,
        openapi_path: str | Path,
        *,
        repo: str = "octo-org/gitops",
        token: str = "ghs_test-token",
        pull_numbers: Iterable[int] = (1,),
    ) -> None:
        path = Path(openapi_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run tools/test-material.sh")
        self.api = load_openapi(path.resolve())
        self.owner, self.name = repo.split("/")
        self.repo = repo
        self.token = token
        self.pull_numbers = set(pull_numbers)
        self.base_url = ""
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Callable[[Call], Response]] = {
            ("GET", "/user"): self._get_user,
            ("GET", "/repos/{owner}/{repo}"): self._get_repo,
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}"): self._get_issue,
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): self._get_pull,
            (
                "GET",
                "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            ): self._list_comments,
            (
                "POST",
                "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            ): self._create_comment,
            (
                "GET",
                "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            ): self._get_comment,
            (
                "PATCH",
                "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            ): self._edit_comment,
            ("GET", "/repos/{owner}/{repo}/deployments"): self._list_deployments,
            ("POST", "/repos/{owner}/{repo}/deployments"): self._create_deployment,
            (
                "GET",
                "/repos/{owner}/{repo}/deployments/{deployment_id}",
            ): self._get_deployment,
            (
                "GET",
                "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
            ): self._list_statuses,
            (
                "POST",
                "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
            ): self._create_status,
        }
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forgets comments, the request log and rejections; restores the switches."""
        with self._lock:
            self.comments: list[dict[str, Any]] = []
            self.requests: list[dict[str, Any]] = []
            self.rejections: list[str] = []
            self.forbid_writes = False
            self.user_forbidden = True
            self.login = ACTIONS_BOT
            self._issue_of: dict[int, int] = {}  # comment id -> issue number
            self.deployments: list[dict[str, Any]] = []  # oldest first
            # deployment id -> oldest first
            self.statuses: dict[int, list[dict[str, Any]]] = {}
            self._next_id = 1001

    def start(self) -> GitHubApiServer:
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="github-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> GitHubApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers ------------------------------------------------------------------------------

    def add_comment(
        self, body: str, *, login: str = "octocat", issue_number: int | None = None
    ) -> Json:
        """Seeds a comment written by someone else (not through the API, not logged)."""
        with self._lock:
            return self._new_comment(
                issue_number or min(self.pull_numbers), body, login
            )

    def comments_on(self, issue_number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments if self._issue_of[c["id"]] == issue_number]

    # -- request handling --------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Message, raw_body: bytes
    ) -> Response:
        with self._lock:
            try:
                logged_body: Json = json.loads(raw_body) if raw_body else None
            except ValueError:
                logged_body = raw_body.decode(errors="replace")
            self.requests.append(
                {"method": method, "path": target, "body": logged_body}
            )
            try:
                call = self.api.check_request(
                    method, target, headers.get("Content-Type"), raw_body
                )
            except Rejection as rejection:
                self.rejections.append(f"{method} {target}: {rejection.reason}")
                return rejection.status, {}, self._error(rejection.reason, "")
            if headers.get("Authorization") not in (
                f"token {self.token}",
                f"Bearer {self.token}",
            ):
                return 401, {}, self._error("Bad credentials", "", status=401)
            handler = self._routes.get((method, call.template))
            if handler is None:
                self.rejections.append(
                    f"{method} {call.template}: documented, not served by the test server"
                )
                return 501, {}, self._error("Not implemented by the test server", "")
            if "owner" in call.path_params and (
                f"{call.path_params['owner']}/{call.path_params['repo']}".lower()
                != self.repo.lower()
            ):
                status, extra, payload = self._not_found(call)
            else:
                status, extra, payload = handler(call)
            problem = self.api.check_response(call, status, payload)
            if problem:
                self.rejections.append(
                    f"{method} {target}: response {status} breaks the schema: {problem}"
                )
            # A copy: the handler thread serializes it after the lock is released.
            return status, extra, copy.deepcopy(payload)

    def _error(
        self, message: str, docs: str, *, status: int | None = None
    ) -> dict[str, Any]:
        body = {
            "message": message,
            "documentation_url": docs or "https://docs.github.com/rest",
        }
        if status is not None:
            body["status"] = str(status)  # GitHub sends it as a string
        return body

    def _not_found(self, call: Call) -> Response:
        return (
            404,
            {},
            self._error("Not Found", call.operation["externalDocs"]["url"], status=404),
        )

    def _forbidden(self, call: Call) -> Response:
        return (
            403,
            {},
            self._error(
                INTEGRATION_FORBIDDEN, call.operation["externalDocs"]["url"], status=403
            ),
        )

    def _localize(self, value: Json, number: int | None = None) -> Json:
        """Moves an example onto this server and repository (PyGithub follows these URLs)."""
        if isinstance(value, dict):
            return {k: self._localize(v, number) for k, v in value.items()}
        if isinstance(value, list):
            return [self._localize(v, number) for v in value]
        if isinstance(value, str):
            value = re.sub(
                r"https://(?:api\.|uploads\.)?github\.com", self.base_url, value
            )
            value = value.replace("octocat/Hello-World", self.repo)
            if number is not None:
                value = re.sub(
                    r"/(issues|pulls|pull)/1347\b", rf"/\g<1>/{number}", value
                )
        return value

    def _user(self, login: str, example: Json = None) -> dict[str, Any]:
        """A user object for `login`, made from `example` (default: the simple-user of a comment)."""
        if example is None:
            example = self.api.doc["components"]["examples"]["issue-comment"]["value"][
                "user"
            ]
        quoted = urllib.parse.quote(login)
        user: dict[str, Any] = json.loads(
            json.dumps(self._localize(example)).replace("/octocat", "/" + quoted)
        )
        bot = login.endswith("[bot]")
        user_id = (
            41898282 if login == ACTIONS_BOT else zlib.crc32(login.encode()) % 10**8
        )
        user.update(
            login=login,
            id=user_id,
            node_id=f"U_{user_id}",
            type="Bot" if bot else "User",
        )
        return user

    def _new_comment(self, issue_number: int, body: str, login: str) -> dict[str, Any]:
        comment_id, self._next_id = self._next_id, self._next_id + 1
        now = _now()
        comment: dict[str, Any] = self._localize(
            self.api.doc["components"]["examples"]["issue-comment"]["value"]
        )
        comment.update(
            id=comment_id,
            node_id=f"IC_{comment_id}",
            url=f"{self.base_url}/repos/{self.repo}/issues/comments/{comment_id}",
            html_url=f"{self.base_url}/{self.repo}/pull/{issue_number}#issuecomment-{comment_id}",
            issue_url=f"{self.base_url}/repos/{self.repo}/issues/{issue_number}",
            body=body,
            user=self._user(login),
            created_at=now,
            updated_at=now,
            author_association="NONE" if login.endswith("[bot]") else "MEMBER",
        )
        self.comments.append(comment)
        self._issue_of[comment_id] = issue_number
        return comment

    def _find_comment(self, call: Call) -> dict[str, Any] | None:
        return next(
            (c for c in self.comments if c["id"] == call.path_params["comment_id"]),
            None,
        )

    def _too_long(self, call: Call) -> Response | None:
        if len(call.body["body"]) <= COMMENT_BODY_LIMIT:
            return None
        error = self._error(
            "Validation Failed", call.operation["externalDocs"]["url"], status=422
        )
        error["errors"] = [
            {
                "resource": "IssueComment",
                "code": "custom",
                "field": "body",
                "message": f"Body is too long (maximum is {COMMENT_BODY_LIMIT} characters)",
            }
        ]
        return 422, {}, error

    # -- operations --------------------------------------------------------------------------------

    def _get_user(self, call: Call) -> Response:
        if self.user_forbidden:
            return self._forbidden(call)
        return 200, {}, self._user(self.login, self.api.example(call, 200))

    def _get_repo(self, call: Call) -> Response:
        repo = self._localize(self.api.example(call, 200))
        repo.update(
            name=self.name,
            full_name=self.repo,
            owner=self._user(self.owner),
            fork=False,
        )
        # required by the schema, absent from GitHub's own example
        repo.setdefault("language", None)
        for fork_only in ("parent", "source", "template_repository"):
            repo.pop(fork_only, None)
        return 200, {}, repo

    def _issue_number(self, call: Call, key: str = "issue_number") -> int | None:
        number = call.path_params[key]
        return number if number in self.pull_numbers else None

    def _get_issue(self, call: Call) -> Response:
        number = self._issue_number(call)
        if number is None:
            return self._not_found(call)
        issue = self._localize(self.api.example(call, 200), number)
        # A pull request is an issue whose html_url is the pull request page.
        html_url = f"{self.base_url}/{self.repo}/pull/{number}"
        issue.update(
            number=number,
            state="open",
            html_url=html_url,
            comments=len(self.comments_on(number)),
        )
        return 200, {}, issue

    def _get_pull(self, call: Call) -> Response:
        number = self._issue_number(call, "pull_number")
        if number is None:
            return self._not_found(call)
        pull = self._localize(self.api.example(call, 200), number)
        # The example's requested_teams entries lack the `type` its own schema requires.
        pull.update(number=number, state="open", requested_teams=[])
        return 200, {}, pull

    def _list_comments(self, call: Call) -> Response:
        number = self._issue_number(call)
        if number is None:
            return self._not_found(call)
        items = self.comments_on(number)
        if "since" in call.query:
            since = datetime.fromisoformat(call.query["since"])
            items = [
                c for c in items if datetime.fromisoformat(c["updated_at"]) >= since
            ]
        # GitHub caps per_page at 100
        per_page = min(max(call.query.get("per_page", 30), 1), 100)
        page = max(call.query.get("page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))

        def link(p: int) -> str:
            query = {**call.query, "per_page": per_page, "page": p}
            path = f"/repos/{self.repo}/issues/{number}/comments"
            return f"<{self.base_url}{path}?{urllib.parse.urlencode(query)}>"

        rels = [("prev", page - 1), ("first", 1)] if page > 1 else []
        rels += [("next", page + 1), ("last", last)] if page < last else []
        headers = (
            {"Link": ", ".join(f'{link(p)}; rel="{rel}"' for rel, p in rels)}
            if rels
            else {}
        )
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _create_comment(self, call: Call) -> Response:
        number = self._issue_number(call)
        if number is None:
            return self._not_found(call)
        if self.forbid_writes:
            return self._forbidden(call)
        too_long = self._too_long(call)
        if too_long:
            return too_long
        comment = self._new_comment(number, call.body["body"], self.login)
        return 201, {"Location": comment["url"]}, comment

    def _get_comment(self, call: Call) -> Response:
        comment = self._find_comment(call)
        if comment is None:
            return self._not_found(call)
        return 200, {}, comment

    def _edit_comment(self, call: Call) -> Response:
        comment = self._find_comment(call)
        if comment is None:
            return self._not_found(call)
        if self.forbid_writes:
            return self._forbidden(call)
        too_long = self._too_long(call)
        if too_long:
            return too_long
        comment.update(body=call.body["body"], updated_at=_now())
        return 200, {}, comment

    # -- deployments -------------------------------------------------------------------------------

    def statuses_of(self, deployment_id: int) -> list[str]:
        """The states set on a deployment, oldest first."""
        return [st["state"] for st in self.statuses.get(deployment_id, [])]

    def _page(self, call: Call, items: list[dict[str, Any]], path: str) -> Response:
        per_page = min(max(call.query.get("per_page", 30), 1), 100)
        page = max(call.query.get("page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))

        def link(p: int) -> str:
            query = {**call.query, "per_page": per_page, "page": p}
            return f"<{self.base_url}{path}?{urllib.parse.urlencode(query)}>"

        rels = [("prev", page - 1), ("first", 1)] if page > 1 else []
        rels += [("next", page + 1), ("last", last)] if page < last else []
        headers = (
            {"Link": ", ".join(f'{link(p)}; rel="{rel}"' for rel, p in rels)}
            if rels
            else {}
        )
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _list_deployments(self, call: Call) -> Response:
        found = [
            d
            for d in reversed(self.deployments)  # GitHub lists the newest first
            if all(
                d[k] == call.query[k]
                for k in ("sha", "ref", "task", "environment")
                if k in call.query
            )
        ]
        return self._page(call, found, f"/repos/{self.repo}/deployments")

    def _create_deployment(self, call: Call) -> Response:
        if self.forbid_writes:
            return self._forbidden(call)
        body = call.body
        deployment_id, self._next_id = self._next_id, self._next_id + 1
        url = f"{self.base_url}/repos/{self.repo}/deployments/{deployment_id}"
        now = _now()
        ref = body["ref"]
        deployment: dict[str, Any] = self._localize(self.api.example(call, 201))
        environment = body.get("environment", "production")
        deployment.update(
            url=url,
            id=deployment_id,
            node_id=f"DE_{deployment_id}",
            # A SHA is its own commit; the test server resolves no branch name.
            sha=ref if re.fullmatch(r"[0-9a-f]{40}", ref) else "0" * 40,
            ref=ref,
            task=body.get("task", "deploy"),
            payload=body.get("payload", {}),
            original_environment=environment,
            environment=environment,
            description=body.get("description", ""),
            creator=self._user(self.login),
            created_at=now,
            updated_at=now,
            statuses_url=f"{url}/statuses",
            repository_url=f"{self.base_url}/repos/{self.repo}",
            transient_environment=body.get("transient_environment", False),
            production_environment=body.get(
                "production_environment", environment == "production"
            ),
        )
        deployment.pop("performed_via_github_app", None)
        self.deployments.append(deployment)
        self.statuses[deployment_id] = []
        return 201, {"Location": url}, deployment

    def _find_deployment(self, call: Call) -> dict[str, Any] | None:
        return next(
            (
                d
                for d in self.deployments
                if d["id"] == call.path_params["deployment_id"]
            ),
            None,
        )

    def _get_deployment(self, call: Call) -> Response:
        found = self._find_deployment(call)
        return (200, {}, found) if found is not None else self._not_found(call)

    def _list_statuses(self, call: Call) -> Response:
        found = self._find_deployment(call)
        if found is None:
            return self._not_found(call)
        newest_first = list(reversed(self.statuses[found["id"]]))
        return self._page(
            call, newest_first, f"/repos/{self.repo}/deployments/{found['id']}/statuses"
        )

    def _create_status(self, call: Call) -> Response:
        found = self._find_deployment(call)
        if found is None:
            return self._not_found(call)
        if self.forbid_writes:
            return self._forbidden(call)
        body = call.body
        if (
            len(body.get("description", "")) > 140
        ):  # GitHub: "description is too long (maximum is 140 characters)"
            error = self._error(
                "Validation Failed", call.operation["externalDocs"]["url"], status=422
            )
            error["errors"] = [
                {
                    "resource": "DeploymentStatus",
                    "code": "custom",
                    "field": "description",
                }
            ]
            return 422, {}, error
        status_id, self._next_id = self._next_id, self._next_id + 1
        now = _now()
        status: dict[str, Any] = self._localize(self.api.example(call, 201))
        target = body.get("log_url") or body.get("target_url", "")
        status.update(
            url=f"{found['url']}/statuses/{status_id}",
            id=status_id,
            node_id=f"DES_{status_id}",
            state=body["state"],
            creator=self._user(self.login),
            description=body.get("description", ""),
            environment=body.get("environment", found["environment"]),
            target_url=target,
            log_url=target,
            environment_url=body.get("environment_url", ""),
            created_at=now,
            updated_at=now,
            deployment_url=found["url"],
            repository_url=f"{self.base_url}/repos/{self.repo}",
        )
        status.pop("performed_via_github_app", None)
        self.statuses[found["id"]].append(status)
        found["updated_at"] = now
        return 201, {"Location": status["url"]}, status
