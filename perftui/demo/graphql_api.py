"""``POST /graphql``: a small graphql-core schema over the synthetic users and bounties.

GraphQL-over-HTTP semantics: 200 with ``{"data": ...}`` (and ``"errors"`` when a field
failed) or ``{"errors": [...]}`` for syntax/validation errors; 400 only when the HTTP body
is not a usable GraphQL request. Parsed-and-validated documents are cached by query text
(bounded LRU), so a load test that repeats the same query pays only for execution.
"""

from __future__ import annotations

import inspect
import itertools
from collections import OrderedDict
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)

from perftui.demo import data

SDL = """
type User {
  id: ID!
  name: String!
  email: String!
  role: String!
  createdAt: String
  bounties(limit: Int = 5): [Bounty!]!
}

type Bounty {
  id: ID!
  title: String!
  status: String!
  reward: Int!
  currency: String!
  createdAt: String
  owner: User
}

type Query {
  users(first: Int = 10, offset: Int = 0): [User!]!
  user(id: ID!): User
  bounties(status: String, limit: Int = 20, offset: Int = 0): [Bounty!]!
  bounty(id: ID!): Bounty
}

type Mutation {
  createBounty(title: String!, reward: Int = 100): Bounty!
}
"""


def _clamp(n: int | None, default: int, hi: int) -> int:
    if n is None:
        return default
    return max(0, min(hi, n))


class _Root:
    """Root value: graphql-core's default resolver calls these methods with (info, **args)."""

    def __init__(self) -> None:
        self._ids = itertools.count(data.N_BOUNTIES + 1)

    def users(self, _info: Any, first: int | None = 10, offset: int | None = 0) -> list[dict[str, Any]]:
        start = _clamp(offset, 0, data.N_USERS)
        return data.USERS[start : start + _clamp(first, 10, 100)]

    def user(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002 - GraphQL arg name
        uid = data.parse_id(str(id), data.N_USERS)
        return data.get_user(uid) if uid else None

    def bounties(
        self, _info: Any, status: str | None = None, limit: int | None = 20, offset: int | None = 0
    ) -> list[dict[str, Any]]:
        pool = data.BOUNTIES if status is None else data.BOUNTIES_BY_STATUS.get(status, [])
        start = _clamp(offset, 0, len(pool))
        return pool[start : start + _clamp(limit, 20, 100)]

    def bounty(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        bid = data.parse_id(str(id), data.N_BOUNTIES)
        return data.get_bounty(bid) if bid else None

    def createBounty(self, _info: Any, title: str, reward: int | None = 100) -> dict[str, Any]:  # noqa: N802
        if not title.strip():
            raise GraphQLError("title must not be empty")
        if reward is not None and reward < 0:
            raise GraphQLError("reward must not be negative")
        return {
            "id": next(self._ids),
            "title": title,
            "status": "open",
            "reward": 100 if reward is None else reward,
            "currency": "USD",
            "owner_id": 1,
            "created_at": None,
        }


def _build() -> GraphQLSchema:
    schema = build_schema(SDL)
    user_t = schema.type_map["User"]
    bounty_t = schema.type_map["Bounty"]
    user_t.fields["createdAt"].resolve = lambda u, _i: u.get("created_at")  # type: ignore[attr-defined]
    user_t.fields["bounties"].resolve = lambda u, _i, limit=5: data.BOUNTIES_BY_OWNER.get(  # type: ignore[attr-defined]
        u["id"], []
    )[: _clamp(limit, 5, 100)]
    bounty_t.fields["createdAt"].resolve = lambda b, _i: b.get("created_at")  # type: ignore[attr-defined]
    bounty_t.fields["owner"].resolve = lambda b, _i: data.get_user(b["owner_id"])  # type: ignore[attr-defined]
    return schema


class GraphQLService:
    def __init__(self, cache_size: int = 256) -> None:
        self.schema = _build()
        self.root = _Root()
        self._cache: OrderedDict[str, DocumentNode | list[GraphQLError]] = OrderedDict()
        self._cache_size = cache_size

    def _document(self, query: str) -> DocumentNode | list[GraphQLError]:
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
            return cached
        try:
            document: DocumentNode | list[GraphQLError] = parse(query)
        except GraphQLError as error:
            document = [error]
        else:
            errors = validate(self.schema, document)
            if errors:
                document = list(errors)
        self._cache[query] = document
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return document

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
    ) -> dict[str, Any]:
        """Execute one operation; the result is the GraphQL response map."""
        document = self._document(query)
        if isinstance(document, list):
            return {"errors": [e.formatted for e in document]}
        result: Any = execute(
            self.schema,
            document,
            root_value=self.root,
            variable_values=variables,
            operation_name=operation_name,
        )
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out


def parse_request(body: Any) -> tuple[str, dict[str, Any] | None, str | None] | str:
    """Validate a decoded GraphQL-over-HTTP body; returns (query, variables, op) or an error."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return "'query' must be a non-empty string"
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return "'variables' must be an object"
    op = body.get("operationName")
    if op is not None and not isinstance(op, str):
        return "'operationName' must be a string"
    return query, variables, op
