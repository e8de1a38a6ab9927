"""HTTP routes: discovery, OpenAPI, and the REST verbs on every resource URL.

Answers JSON whatever the client prefers (kubectl asks for protobuf first and falls back on the
response's Content-Type); refuses protobuf request bodies with 415.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from typing import Any

import yaml
from aiohttp import web

from . import discovery, openapi
from . import patch as patching
from . import scale as scaling
from .errors import (
    ApiError,
    bad_request,
    gone,
    method_not_allowed,
    status_details,
    unsupported_media_type,
)
from .objects import ObjectService, WriteOptions, WriteResult
from .options import DeleteOptions, parse_delete_options, parse_dry_run
from .partition import Partitions
from .protobuf import ProtobufError, decode_object
from .resources import ResourceType
from .selectors import combine, parse_field_selector, parse_label_selector
from .sharding import parse_shard_selector, shard_info
from .table import build_table, partial_metadata
from .watch import WatchRequest, WatchStream

logger = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_TRUE = ("1", "true", "True")
# Built-ins whose registry answers DELETE with the deleted object (`ReturnDeletedObject: true`).
RETURNS_DELETED_OBJECT = {
    ("", "namespaces"),
    ("", "pods"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
}


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(body), status=status, content_type=JSON)


def _manager_from_user_agent(user_agent: str) -> str:
    """The apiserver's manager for a write without `fieldManager`: the User-Agent up to its first
    "/" (`kubectl`, `OpenAPI-Generator`, `kopf`), at most 128 characters."""
    return user_agent.split("/", 1)[0][:128]


def _warning_header(text: str) -> str:
    return "299 - " + json.dumps(text)


class ApiServer:
    """The aiohttp application over an `ObjectService`."""

    def __init__(
        self,
        objects: ObjectService,
        *,
        bookmark_interval: float = 60.0,
        default_watch_timeout: float = 1800.0,
        shard_selectors: bool = True,
    ) -> None:
        self.objects = objects
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.server_address = "127.0.0.1:0"
        self.request_counts: Counter[tuple[str, str]] = Counter()
        self.partitions = Partitions()
        # KEP-5866 (`shardSelector`, Kubernetes 1.36+). Off: the parameter is ignored, as an
        # apiserver without the feature ignores it (no filter, no `shardInfo`); switched at
        # runtime with `POST /_kubesim/features {"shardSelector": false}`.
        self.shard_selectors = shard_selectors
        # Per client (bearer token, else User-Agent) and plural: objects sent in watch events
        # and in list answers, and the lists made (GET /_kubesim/stats `clients`).
        self.client_counts: dict[str, Counter[str]] = {}
        # Per client: the UIDs its lists answered and its watches sent (in-process tests).
        self.listed_uids: dict[str, set[str]] = {}
        self.watched_uids: dict[str, set[str]] = {}

    # --- application -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.partitions.middleware, self._errors], client_max_size=64 * 1024 * 1024
        )
        self.partitions.add_routes(app)
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        for probe in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(probe, self._ok)
        app.router.add_get("/_kubesim/stats", self._stats)
        app.router.add_get("/_kubesim/features", self._features)
        app.router.add_post("/_kubesim/features", self._features)
        app.router.add_get("/api", self._core_versions)
        app.router.add_get("/api/", self._core_versions)
        app.router.add_get("/apis", self._groups)
        app.router.add_get("/apis/", self._groups)
        app.router.add_get("/openapi/v3", self._openapi_index)
        app.router.add_get("/openapi/v3/{gv:.+}", self._openapi_document)
        app.router.add_route("*", "/api/v1", self._core_resource_list)
        app.router.add_route("*", "/api/v1/{tail:.+}", self._core_resource)
        app.router.add_get("/apis/{group}", self._group)
        app.router.add_route("*", "/apis/{group}/{version}", self._group_resource_list)
        app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", self._group_resource)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except ApiError as error:
            response = json_response(error.body(), error.code)
            response.headers.update(error.headers)
            return response
        except web.HTTPNotFound:
            return json_response(
                ApiError(404, "NotFound", "the server could not find the requested resource").body(), 404
            )
        except web.HTTPException:
            raise
        except Exception as exc:  # the client gets a Status, as from a real apiserver
            logger.exception("kubesim: %s %s failed", request.method, request.path)
            return json_response(
                ApiError(500, "InternalError", f"Internal error occurred: {exc!r}").body(), 500
            )

    # --- discovery and OpenAPI ---------------------------------------------------------------------

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _stats(self, request: web.Request) -> web.Response:
        """Read-only debug view of `request_counts` (benchmarks count the operator's writes)."""
        requests = [
            {"verb": verb, "route": route, "count": count}
            for (verb, route), count in sorted(self.request_counts.items())
        ]
        clients = {client: dict(counts) for client, counts in sorted(self.client_counts.items())}
        return json_response({"requests": requests, "clients": clients})

    async def _features(self, request: web.Request) -> web.Response:
        """`{"shardSelector": bool}`: whether `shardSelector` is honoured (POST switches it)."""
        if request.method == "POST":
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("shardSelector", True), bool):
                raise bad_request('expected {"shardSelector": true|false}')
            self.shard_selectors = body.get("shardSelector", self.shard_selectors)
        return json_response({"shardSelector": self.shard_selectors})

    @staticmethod
    def client_of(request: web.Request) -> str:
        """Who sent a request: its bearer token, else its User-Agent (kubesim authenticates
        nobody; tests give each client a kubeconfig with a token of its own)."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer ") :]
        return request.headers.get("User-Agent", "")

    def reset_counts(self) -> None:
        self.client_counts.clear()
        self.listed_uids.clear()
        self.watched_uids.clear()

    def count(self, request: web.Request, key: str, n: int = 1) -> None:
        counts = self.client_counts.setdefault(self.client_of(request), Counter())
        counts[key] += n

    def _shard_selector(self, request: web.Request) -> str | None:
        """The `shardSelector` to apply: None when absent, or when the feature is off."""
        return request.query.get("shardSelector") or None if self.shard_selectors else None

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version())

    async def _core_versions(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(discovery.aggregated(self.objects.registry, core=True))
        return json_response(discovery.core_versions(self.server_address))

    async def _groups(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(discovery.aggregated(self.objects.registry, core=False))
        return json_response(discovery.group_list(self.objects.registry))

    @staticmethod
    def _aggregated(body: dict[str, Any]) -> web.Response:
        # The Content-Type is how clients tell the aggregated form from the legacy one.
        response = web.Response(text=_dumps(body))
        response.headers["Content-Type"] = discovery.AGGREGATED_V2
        response.headers["Vary"] = "Accept"
        return response

    async def _group(self, request: web.Request) -> web.Response:
        body = discovery.group(self.objects.registry, request.match_info["group"])
        if body is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(body)

    async def _resource_list(self, request: web.Request, group: str, version: str) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed()
        body = discovery.resource_list(self.objects.registry, group, version)
        if body is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(body)

    async def _core_resource_list(self, request: web.Request) -> web.Response:
        return await self._resource_list(request, "", "v1")

    async def _group_resource_list(self, request: web.Request) -> web.Response:
        return await self._resource_list(request, request.match_info["group"], request.match_info["version"])

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return json_response(openapi.index(self.objects.registry))

    async def _openapi_document(self, request: web.Request) -> web.Response:
        parts = request.match_info["gv"].strip("/").split("/")
        doc = None
        if parts[0] == "api" and len(parts) == 2:
            doc = openapi.document(self.objects.registry, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = openapi.document(self.objects.registry, parts[1], parts[2])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(doc)

    # --- resources ---------------------------------------------------------------------------------

    async def _core_resource(self, request: web.Request) -> web.StreamResponse:
        return await self._resource(request, "", "v1", request.match_info["tail"])

    async def _group_resource(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self._resource(request, info["group"], info["version"], info["tail"])

    async def _resource(
        self, request: web.Request, group: str, version: str, tail: str
    ) -> web.StreamResponse:
        segments = [s for s in tail.split("/") if s]
        namespace: str | None = None
        # /namespaces/NS/PLURAL[/NAME[/SUB]] — except /namespaces/NAME[/status|/finalize] itself.
        if (
            len(segments) >= 3
            and segments[0] == "namespaces"
            and not (group == "" and len(segments) == 3 and segments[2] in ("status", "finalize"))
        ):
            namespace = segments[1]
            segments = segments[2:]
        if not segments or len(segments) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        plural = segments[0]
        name: str | None = segments[1] if len(segments) > 1 else None
        subresource = segments[2] if len(segments) > 2 else ""
        rtype = self.objects.registry.lookup(group, version, plural)
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rtype.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        scalable = (rtype.group, rtype.plural) in scaling.SCALABLE
        if subresource and not (
            (subresource == "status" and rtype.has_status) or (subresource == "scale" and scalable)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = request.method
        route = rtype.url("{namespace}" if namespace else None, "{name}" if name else None)
        route += f"/{subresource}" if subresource else ""
        watching = verb == "GET" and name is None and request.query.get("watch") in _TRUE
        self.request_counts[("WATCH" if watching else verb, route)] += 1
        if rtype.review and not (name is None and verb == "POST"):
            raise method_not_allowed()
        if name is None:
            if verb == "GET":
                if request.query.get("watch") in _TRUE:
                    return await self._watch(request, rtype, namespace)
                return self._list(request, rtype, namespace)
            if verb == "POST":
                return await self._create(request, rtype, namespace)
            if verb == "DELETE":
                return await self._delete_collection(request, rtype, namespace)
            raise method_not_allowed()
        if rtype.namespaced and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource == "scale":
            return await self._scale(request, rtype, namespace, name)
        if verb == "GET":
            return self._render_one(request, rtype, self.objects.get(rtype, namespace, name))
        if verb == "PUT":
            body = await self._body(request)
            result = await self.objects.update(
                rtype, namespace, name, body, self._write_options(request), subresource
            )
            return self._write_response(result)
        if verb == "PATCH":
            return await self._patch(request, rtype, namespace, name, subresource)
        if verb == "DELETE" and not subresource:
            options = await self._delete_options(request)
            deleted = await self.objects.delete(rtype, namespace, name, options.as_dict(), options.dry_run)
            return json_response(self._deletion_result(rtype, namespace, name, deleted))
        raise method_not_allowed()

    # --- helpers -------------------------------------------------------------------------------------

    def _deletion_result(
        self, rtype: ResourceType, namespace: str | None, name: str, deleted: dict[str, Any]
    ) -> dict[str, Any]:
        """What DELETE answers: the object while it lingers (finalizers) and for the kinds whose
        registries set `ReturnDeletedObject` (custom resources, CRDs, namespaces, pods, services,
        service accounts, PVCs, PVs); a `Status` of Success for other built-ins gone at once.
        A dry run answers what the real delete would have (the object is unchanged in store)."""
        returns_object = rtype.custom or (rtype.group, rtype.plural) in RETURNS_DELETED_OBJECT
        if returns_object or deleted["metadata"].get("finalizers"):
            return deleted
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": status_details(
                {"name": name, "group": rtype.group, "kind": rtype.plural, "uid": deleted["metadata"]["uid"]}
            ),
        }

    async def _body(self, request: web.Request, *, allow_empty: bool = False) -> Any:
        raw = await request.read()
        if not raw.strip():
            if allow_empty:
                return None
            raise bad_request("the request body is empty")
        content_type = request.content_type or JSON
        if content_type == PROTOBUF:
            try:
                return decode_object(raw)
            except ProtobufError as exc:
                raise unsupported_media_type(f"{content_type}: {exc}", [JSON, "application/yaml"]) from exc
        if "protobuf" in content_type or "cbor" in content_type:
            raise unsupported_media_type(content_type, [JSON, "application/yaml"])
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"couldn't decode the request body as {content_type}: {exc}") from exc

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return parse_dry_run(request.query.getall("dryRun", []), "CreateOptions")

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body = await self._body(request, allow_empty=True)
        return parse_delete_options(request.query, request.query.getall("dryRun", []), body)

    def _write_options(self, request: web.Request) -> WriteOptions:
        validation = request.query.get("fieldValidation", "Warn")
        if validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f"fieldValidation must be one of Ignore, Warn or Strict, not {validation!r}")
        return WriteOptions(
            dry_run=self._dry_run(request),
            field_manager=request.query.get("fieldManager"),
            field_validation=validation,
            user_agent_manager=_manager_from_user_agent(request.headers.get("User-Agent", "")),
            force=request.query.get("force") in _TRUE,
        )

    @staticmethod
    def _write_response(result: WriteResult, status: int = 200) -> web.Response:
        response = web.Response(text=_dumps(result.obj), status=status, content_type=JSON)
        for warning in result.warnings:
            response.headers.add("Warning", _warning_header(warning))
        return response

    @staticmethod
    def _output(request: web.Request) -> str:
        accept = request.headers.get("Accept", "")
        for clause in accept.split(","):
            if "as=Table" in clause:
                return "table"
            if "as=PartialObjectMetadata" in clause:
                return "metadata"
            if clause.strip().startswith(JSON) or clause.strip() in ("*/*", ""):
                return "object"
        return "object"

    def _render_one(self, request: web.Request, rtype: ResourceType, obj: dict[str, Any]) -> web.Response:
        output = self._output(request)
        if output == "table":
            include = request.query.get("includeObject", "Metadata")
            return json_response(build_table(rtype, [obj], include_object=include))
        if output == "metadata":
            return json_response(partial_metadata(obj))
        return json_response(obj)

    def _predicate(self, request: web.Request, rtype: ResourceType) -> Any:
        predicates = [
            parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector"), f"{rtype.group}/{rtype.plural}"),
        ]
        shard_selector = self._shard_selector(request)
        if shard_selector:
            predicates.append(parse_shard_selector(shard_selector))
        return combine(*predicates)

    def _list(self, request: web.Request, rtype: ResourceType, namespace: str | None) -> web.Response:
        predicate = self._predicate(request, rtype)
        store = self.objects.store
        list_rv = store.resource_version
        items = self.objects.list(rtype, namespace, predicate)
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        shard_selector = self._shard_selector(request)
        if shard_selector:
            metadata["shardInfo"] = shard_info(shard_selector)
        token = request.query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = (state["ns"], state["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(f"invalid continue token: {exc}") from exc
            if not store.history_covers(int(state.get("rv", 0))):
                raise gone("The provided continue parameter is too old to display a consistent list result.")
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        limit = int(request.query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            state = {"rv": list_rv, "ns": last.get("namespace", ""), "name": last["name"]}
            metadata["continue"] = base64.urlsafe_b64encode(_dumps(state).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        self.count(request, f"list:{rtype.plural}")
        self.count(request, f"listed:{rtype.plural}", len(items))
        self.listed_uids.setdefault(self.client_of(request), set()).update(
            o["metadata"].get("uid", "") for o in items
        )
        output = self._output(request)
        if output == "table":
            include = request.query.get("includeObject", "Metadata")
            return json_response(build_table(rtype, items, include_object=include, list_metadata=metadata))
        if output == "metadata":
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                    "items": [partial_metadata(o) for o in items],
                }
            )
        return json_response(
            {"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": metadata, "items": items}
        )

    async def _watch(
        self, request: web.Request, rtype: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        query = request.query
        try:
            timeout = float(query.get("timeoutSeconds") or self.default_watch_timeout)
        except ValueError as exc:
            raise bad_request(f"invalid timeoutSeconds: {exc}") from exc
        watch_request = WatchRequest(
            rtype=rtype,
            namespace=namespace,
            predicate=self._predicate(request, rtype),
            resource_version=query.get("resourceVersion"),
            timeout=timeout,
            allow_bookmarks=query.get("allowWatchBookmarks") in _TRUE,
            send_initial_events=query.get("sendInitialEvents") in _TRUE,
            output=self._output(request),
            include_object=query.get("includeObject", "Metadata"),
        )
        self.count(request, f"watch:{rtype.plural}")
        client = self.client_of(request)

        def sent(uids: list[str]) -> None:
            self.client_counts.setdefault(client, Counter())[f"watched:{rtype.plural}"] += len(uids)
            self.watched_uids.setdefault(client, set()).update(uids)

        stream = WatchStream(self.objects.store, watch_request, self.bookmark_interval, on_events=sent)
        return await stream.serve(request)

    async def _create(self, request: web.Request, rtype: ResourceType, namespace: str | None) -> web.Response:
        if rtype.review:
            return json_response(await self._review(request, rtype), 201)
        body = await self._body(request)
        result = await self.objects.create(rtype, namespace, body, self._write_options(request))
        return self._write_response(result, 201)

    async def _review(self, request: web.Request, rtype: ResourceType) -> dict[str, Any]:
        """Answer a review without storing it: every request is allowed, made by an admin.

        kubectl sends these as protobuf; only JSON bodies are echoed back (the answer does not
        depend on them)."""
        spec: Any = {}
        if request.content_type != PROTOBUF:
            body = await self._body(request, allow_empty=True) or {}
            spec = body.get("spec", {}) if isinstance(body, dict) else {}
        if rtype.kind == "SelfSubjectAccessReview":
            status: dict[str, Any] = {"allowed": True, "reason": "kubesim authorizes every request"}
        elif rtype.kind == "SelfSubjectRulesReview":
            # What an allow-all authorizer answers: every verb on everything, and complete.
            status = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        else:
            status = {
                "userInfo": {
                    "username": "kubesim-admin",
                    "groups": ["system:masters", "system:authenticated"],
                }
            }
        return {
            "kind": rtype.kind,
            "apiVersion": rtype.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    async def _patch(
        self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str, subresource: str
    ) -> web.Response:
        patch_type = request.content_type
        if patch_type not in patching.PATCH_TYPES:
            raise unsupported_media_type(patch_type, list(patching.PATCH_TYPES))
        body = await self._body(request)
        options = self._write_options(request)
        if patch_type == patching.APPLY and "fieldValidation" not in request.query:
            options.field_validation = "Strict"  # server-side apply validates strictly by default
        result = await self.objects.patch(rtype, namespace, name, patch_type, body, options, subresource)
        return self._write_response(result, 201 if result.created else 200)

    async def _scale(
        self, request: web.Request, rtype: ResourceType, namespace: str | None, name: str
    ) -> web.Response:
        if request.method == "GET":
            return json_response(self.objects.get_scale(rtype, namespace, name))
        if request.method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        patch_type = None
        if request.method == "PATCH":
            patch_type = request.content_type
            if patch_type not in patching.PATCH_TYPES or patch_type == patching.APPLY:
                raise unsupported_media_type(
                    patch_type, [patching.JSON_PATCH, patching.MERGE, patching.STRATEGIC]
                )
        body = await self._body(request)
        result = await self.objects.write_scale(
            rtype, namespace, name, body, self._write_options(request), patch_type
        )
        return self._write_response(result)

    async def _delete_collection(
        self, request: web.Request, rtype: ResourceType, namespace: str | None
    ) -> web.Response:
        options = await self._delete_options(request)
        deleted = await self.objects.delete_collection(
            rtype, namespace, self._predicate(request, rtype), options.as_dict(), options.dry_run
        )
        return json_response(
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(self.objects.store.resource_version)},
                "items": deleted,
            }
        )
