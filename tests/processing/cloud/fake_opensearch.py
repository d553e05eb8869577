"""An in-memory OpenSearch behind a real `opensearchpy.Connection` subclass, for driving the store offline.

Only the APIs the store calls are modelled, and each answers with the response shape OpenSearch documents
(cluster and index health, get alias, create index, get and update settings, bulk, refresh,
count, aliases, delete, k-NN search, search pipelines). Every request is recorded with its parsed body and its
size in bytes, so tests assert exactly what was sent. Indices carry `index.creation_date` from the cluster's
`clock` (seconds; tests move it). Faults are injected explicitly: `respond_once` replaces the next matching
response, `reject_item` fails one bulk item.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opensearchpy import Connection


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    body: Any  # parsed JSON, a list of parsed NDJSON lines for _bulk, or None
    size: int = 0  # bytes of the raw body


@dataclass
class _Index:
    settings: dict[str, Any]
    mappings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)


def _error(status: int, error_type: str, reason: str) -> tuple[int, dict[str, Any]]:
    cause = {"type": error_type, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


_SHARDS = {"total": 1, "successful": 1, "failed": 0}
_BULK_ITEM_ERRORS = {429: "es_rejected_execution_exception", 400: "mapper_parsing_exception"}


class FakeCluster:
    def __init__(self, data_nodes: int = 1, clock: Callable[[], float] = time.time) -> None:
        self.data_nodes = data_nodes
        self.clock = clock
        self.requests: list[Request] = []
        self.indices: dict[str, _Index] = {}
        self.pipelines: dict[str, Any] = {}
        self._overrides: list[tuple[str, re.Pattern[str], int, Any]] = []
        self._item_rejections: dict[str, list[int]] = {}

    # -- fault injection -------------------------------------------------------------------------
    def respond_once(self, method: str, path_pattern: str, status: int, body: Any) -> None:
        self._overrides.append((method, re.compile(path_pattern), status, body))

    def reject_item(self, doc_id: str, *statuses: int) -> None:
        """The next bulk attempts for `doc_id` fail with these statuses, in order (429 or 400)."""
        self._item_rejections.setdefault(doc_id, []).extend(statuses)

    # -- inspection ------------------------------------------------------------------------------
    def calls(self) -> list[str]:
        return [f"{request.method} {request.path}" for request in self.requests]

    def last(self, method: str, path: str) -> Request:
        return [r for r in self.requests if r.method == method and r.path == path][-1]

    def alias_targets(self, alias: str) -> list[str]:
        return sorted(name for name, index in self.indices.items() if alias in index.aliases)

    # -- request handling ------------------------------------------------------------------------
    def handle(self, method: str, url: str, params: dict[str, Any], raw_body: str | None) -> tuple[int, Any]:
        path = url.split("?")[0]
        body = self._parse_body(path, raw_body)
        self.requests.append(Request(method, path, params, body, len((raw_body or "").encode())))
        for position, (o_method, pattern, status, response) in enumerate(self._overrides):
            if o_method == method and pattern.fullmatch(path):
                del self._overrides[position]
                return status, response
        return self._route(method, path.strip("/").split("/"), params, body)

    @staticmethod
    def _parse_body(path: str, raw_body: str | None) -> Any:
        if not raw_body:
            return None
        if path.endswith("_bulk"):
            return [json.loads(line) for line in raw_body.splitlines() if line]
        return json.loads(raw_body)

    def _route(self, method: str, parts: list[str], params: dict[str, Any], body: Any) -> tuple[int, Any]:
        match method, parts:
            case "GET", ["_cluster", "health"]:
                return 200, self.health()
            case "GET", ["_cluster", "health", name]:
                if name not in self.indices:
                    return self._missing(name)
                health = self.health([name])
                return (408 if health["timed_out"] else 200), health
            case "GET", ["_alias", alias]:
                found = self.alias_targets(alias)
                if not found:
                    return 404, {"error": f"alias [{alias}] missing", "status": 404}
                return 200, {name: {"aliases": {alias: {}}} for name in found}
            case "GET", [pattern, "_alias"]:
                return 200, self._get_alias(pattern)
            case "GET", [pattern, "_settings", *setting]:
                return self._get_settings(pattern, setting[0] if setting else "*")
            case "PUT", [name, "_settings"]:
                if name not in self.indices:
                    return self._missing(name)
                self.indices[name].settings["index"].update(body["index"])
                return 200, {"acknowledged": True}
            case "PUT", ["_search", "pipeline", name]:
                self.pipelines[name] = body
                return 200, {"acknowledged": True}
            case "POST", ["_bulk"]:
                return 200, self._bulk(body)
            case "POST", ["_aliases"]:
                return self._update_aliases(body["actions"])
            case "POST", [name, "_refresh"]:
                return (200, {"_shards": _SHARDS}) if name in self.indices else self._missing(name)
            case "GET" | "POST", [name, "_count"]:
                targets = self._resolve(name)
                if not targets:
                    return self._missing(name)
                return 200, {"count": sum(len(self.indices[t].docs) for t in targets), "_shards": _SHARDS}
            case "GET" | "POST", [name, "_search"]:
                return self._search(name, body)
            case "PUT", [name]:
                return self._create(name, body)
            case "DELETE", [names]:
                return self._delete(names.split(","))
        return _error(400, "illegal_argument_exception", f"fake cluster does not model {method} /{'/'.join(parts)}")

    def health(self, names: list[str] | None = None) -> dict[str, Any]:
        """Cluster health, or that of the named indices: yellow while a replica has no node of its own."""
        indices = [self.indices[name] for name in names] if names is not None else list(self.indices.values())
        unassigned = sum(
            int(index.settings["index"]["number_of_replicas"]) * int(index.settings["index"]["number_of_shards"])
            for index in indices
            if int(index.settings["index"]["number_of_replicas"]) > self.data_nodes - 1
        )
        return {
            "cluster_name": "111111111111:ragops-dev",
            "status": "yellow" if unassigned else "green",
            "timed_out": bool(unassigned and names),  # waiting for green on an index that cannot turn green
            "number_of_nodes": self.data_nodes,
            "number_of_data_nodes": self.data_nodes,
            "active_primary_shards": len(indices),
            "unassigned_shards": unassigned,
        }

    def _get_settings(self, pattern: str, setting: str) -> tuple[int, Any]:
        """GET <pattern>/_settings[/<setting>]: values as the strings OpenSearch returns; 404 for a missing name."""
        found = {name: index for name, index in self.indices.items() if fnmatch.fnmatchcase(name, pattern)}
        if not found and "*" not in pattern:
            return self._missing(pattern)
        return 200, {
            name: {
                "settings": {
                    "index": {
                        key: str(value)
                        for key, value in index.settings["index"].items()
                        if fnmatch.fnmatchcase(f"index.{key}", setting)
                    }
                }
            }
            for name, index in found.items()
        }

    def _get_alias(self, pattern: str) -> dict[str, Any]:
        return {
            name: {"aliases": {alias: {} for alias in sorted(index.aliases)}}
            for name, index in self.indices.items()
            if fnmatch.fnmatchcase(name, pattern)
        }

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.indices:
            return _error(400, "resource_already_exists_exception", f"index [{name}] already exists")
        settings = {"index": {**body["settings"]["index"], "creation_date": int(self.clock() * 1000)}}
        self.indices[name] = _Index(settings=settings, mappings=body["mappings"])
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _bulk(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        items = []
        for action, source in zip(lines[0::2], lines[1::2], strict=True):
            meta = action["index"]
            doc_id, index = meta["_id"], self.indices[meta["_index"]]
            rejections = self._item_rejections.get(doc_id)
            if rejections:
                status = rejections.pop(0)
                reason = f"failed to index [{doc_id}]"
                item = {"_index": meta["_index"], "_id": doc_id, "status": status}
                items.append({"index": {**item, "error": {"type": _BULK_ITEM_ERRORS[status], "reason": reason}}})
                continue
            result = "updated" if doc_id in index.docs else "created"
            index.docs[doc_id] = source
            item = {"_index": meta["_index"], "_id": doc_id, "_version": 1, "result": result, "_shards": _SHARDS}
            items.append({"index": {**item, "status": 201 if result == "created" else 200}})
        errors = any("error" in item["index"] for item in items)
        return {"took": 3, "errors": errors, "items": items}

    def _update_aliases(self, actions: list[dict[str, Any]]) -> tuple[int, Any]:
        """Atomic: every action's index must resolve (a wildcard may match none) before any is applied."""
        resolved = []
        for action in actions:
            ((kind, spec),) = action.items()
            names = [name for name in self.indices if fnmatch.fnmatchcase(name, spec["index"])]
            if not names and "*" not in spec["index"]:
                return self._missing(spec["index"])
            resolved.append((kind, spec["alias"], names))
        for kind, alias, names in resolved:
            for name in names:
                (self.indices[name].aliases.add if kind == "add" else self.indices[name].aliases.discard)(alias)
        return 200, {"acknowledged": True}

    def _delete(self, names: list[str]) -> tuple[int, Any]:
        missing = [name for name in names if name not in self.indices]
        if missing:
            return self._missing(missing[0])
        for name in names:
            del self.indices[name]
        return 200, {"acknowledged": True}

    def _search(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Exact k-NN over the stored vectors with OpenSearch's score for the index's space type."""
        targets = self._resolve(name)
        if not targets:
            return self._missing(name)
        if set(body["query"]) != {"knn"}:
            return _error(400, "parsing_exception", "fake cluster only evaluates knn queries")
        ((field_name, knn),) = body["query"]["knn"].items()
        query = np.asarray(knn["vector"], dtype=np.float64)
        scored = []
        for target in targets:
            space = self.indices[target].mappings["properties"][field_name]["method"]["space_type"]
            for doc_id, source in self.indices[target].docs.items():
                scored.append((_score(space, query, np.asarray(source[field_name])), doc_id, target, source))
        scored.sort(key=lambda entry: -entry[0])
        excluded = set(body.get("_source", {}).get("excludes", []))
        hits = [
            {
                "_index": target,
                "_id": doc_id,
                "_score": score,
                "_source": {key: value for key, value in src.items() if key not in excluded},
            }
            for score, doc_id, target, src in scored[: min(knn["k"], body.get("size", 10))]
        ]
        total = {"value": len(hits), "relation": "eq"}
        max_score = hits[0]["_score"] if hits else None
        return 200, {"took": 2, "timed_out": False, "hits": {"total": total, "max_score": max_score, "hits": hits}}

    def _resolve(self, name: str) -> list[str]:
        if name in self.indices:
            return [name]
        return self.alias_targets(name)

    @staticmethod
    def _missing(name: str) -> tuple[int, Any]:
        return _error(404, "index_not_found_exception", f"no such index [{name}]")


def _score(space: str, query: np.ndarray, vector: np.ndarray) -> float:
    """OpenSearch k-NN score transformations (higher is better), from the k-NN spaces documentation."""
    if space == "cosinesimil":
        cosine = float(query @ vector / (np.linalg.norm(query) * np.linalg.norm(vector)))
        return (1.0 + cosine) / 2.0
    if space == "innerproduct":
        product = float(query @ vector)
        return 1.0 + product if product >= 0 else 1.0 / (1.0 - product)
    return 1.0 / (1.0 + float(np.sum((query - vector) ** 2)))


class FakeClusterConnection(Connection):
    """A real opensearch-py Connection whose transport is the in-memory cluster bound by `connection_for`."""

    cluster: FakeCluster

    def __init__(self, **kwargs: Any) -> None:
        self.init_kwargs = kwargs
        super().__init__(**kwargs)

    def perform_request(
        self,
        method: str,
        url: str,
        params: Any = None,
        body: Any = None,
        timeout: Any = None,
        ignore: Any = (),
        headers: Any = None,
    ) -> Any:
        raw_body = body.decode() if isinstance(body, bytes) else body
        decoded = {key: value.decode() if isinstance(value, bytes) else value for key, value in (params or {}).items()}
        status, payload = self.cluster.handle(method, url, decoded, raw_body)
        raw = json.dumps(payload)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def connection_for(cluster: FakeCluster) -> type[FakeClusterConnection]:
    return type("BoundFakeClusterConnection", (FakeClusterConnection,), {"cluster": cluster})
