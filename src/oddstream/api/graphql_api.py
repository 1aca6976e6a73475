"""GraphQL at ``/api/graphql`` (Strawberry): the fixed-odds markets' queries, and
``getInstantOdds``, their changes live over WebSocket (``graphql-transport-ws``, and the
legacy ``graphql-ws``). See ``docs/fixed-odds.md``, "GraphQL".

The work is the application's (:mod:`oddstream.application.odds`, the REST routes'
too); the live changes come from :class:`~.odds_push.OddsHub`. Field names are the odds
service's clients' (snake_case: ``external_id``, ``game_id``, ``moneyline``…), so the
schema does not camel-case them. Prices are the ``Decimal`` scalar (a string of the
exact decimal digits), log positions and ``id`` the ``Long`` scalar (a 64-bit integer:
GraphQL's ``Int`` is 32 bits), times the ``DateTime`` scalar in the REST routes' form.
A refusal is a GraphQL error whose ``extensions`` carry the REST ``code`` and
``status``; any other exception is masked ("Unexpected error.").
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import AsyncGenerator, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NewType

import strawberry
from cross_web import HTTPException  # Strawberry's HTTP refusals (its dependency)
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, StreamResult
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import Info
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from ..application import odds
from ..application.bodies import MAX_POSITION
from ..application.errors import ApiError
from ..application.services import Services, await_reads
from ..domain.fixedodds import formats
from ..domain.fixedodds.odds import Odds as DomainOdds
from ..projections.odds_view import OddsRecord
from .graphql_fanout import (
    MAX_SHARED,
    CheapMaskErrors,
    Latest,
    SharedLegacyWSHandler,
    SharedPushExecutor,
    SharedTransportWSHandler,
)
from .odds_push import OddsFilter

log = logging.getLogger(__name__)

PATH = "/api/graphql"
#: the deepest selection a document may have (introspection's ``__schema`` is exempt);
#: the schema's deepest real selection is 3 (``getOdds { items { moneyline { home } } }``)
MAX_DEPTH = 6
#: aliases in a document: each alias of ``getOdds`` is another page to build
MAX_ALIASES = 15
#: tokens in a document (the parser stops there): a long document costs before any limit
MAX_TOKENS = 2000
#: a ``graphql-transport-ws`` client must send ``connection_init`` within this
CONNECTION_INIT_SECONDS = 10
#: subscriptions on one WebSocket
MAX_SUBSCRIPTIONS_PER_CONNECTION = 10
_GAME = re.compile(r"[A-Za-z0-9._:-]{1,100}")

Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a Long is a whole number, not {value!r:.40}")
    if not -(2**63) <= value < 2**63:
        raise ValueError("a Long is a signed 64-bit integer")
    return value


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a DateTime is an ISO 8601 string")
    return datetime.fromisoformat(value)


def _parse_decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("a Decimal is a string of decimal digits")
    try:
        return Decimal(value)
    except ArithmeticError:
        raise ValueError(f"not a decimal number: {value!r:.40}") from None


def refused(exc: ApiError) -> GraphQLError:
    """A refusal as a GraphQL error: the message, the REST ``code`` and ``status``."""
    return GraphQLError(exc.message, extensions={"code": exc.code, "status": exc.status})


@strawberry.type(
    description="A game's prices: decimal odds, exact when the decimal terminates (every "
    "price of a JSON command does), else to six places (a protobuf command can quote 8/13: "
    "1.615385 here; `moneyline_text` writes it exactly)"
)
class MoneyLine:
    home: Decimal
    away: Decimal
    draw: Decimal | None = strawberry.field(description="null: a two-way game")


@strawberry.type(description='A price as the odds formats write it (docs/fixed-odds.md, "Formats")')
class PriceText:
    decimal: str = strawberry.field(
        description="decimal odds, at least two places: every digit when the decimal "
        'terminates ("2.10", "1.905"), else rounded to two (8/13 → "1.62")'
    )
    fractional: str = strawberry.field(
        description='fractional odds, the exact reduced fraction ("91/100", "8/13"; evens "1/1")'
    )

    @classmethod
    def of(cls, price: DomainOdds) -> PriceText:
        return cls(decimal=formats.decimal_str(price), fractional=formats.fractional_str(price))


@strawberry.type(description="A game's prices as text, exact whatever the price")
class MoneyLineText:
    home: PriceText
    away: PriceText
    draw: PriceText | None = strawberry.field(description="null: a two-way game")


@strawberry.enum(
    name="MarketStatus",
    description="A market's lifecycle status, as the REST record's `Status` writes it",
)
class MarketStatus(enum.Enum):
    open = "open"
    suspended = "suspended"
    closed = "closed"
    resulted = "resulted"
    voided = "voided"
    deleted = "deleted"


@strawberry.type(description="A market's odds record, as `GET /odds/{external_id}` answers it")
class Odds:
    id: Long = strawberry.field(description="the log position of the market's creation")
    external_id: str = strawberry.field(description="the market's UUID")
    game_id: str
    moneyline: MoneyLine
    deleted: bool
    created_at: datetime
    updated_at: datetime
    status: MarketStatus = strawberry.field(
        description="open, suspended (no bets until resumed), closed (no more bets), "
        "resulted, voided, or deleted (`deleted` is true)"
    )
    position: Long = strawberry.field(
        description="the log position of the latest change the record includes "
        "(`min_position` for a read that must include it)"
    )
    #: what the record's fields are read from (``moneyline_text``)
    record: strawberry.Private[OddsRecord]

    @classmethod
    def of(cls, record: OddsRecord) -> Odds:
        line = record.money_line
        return cls(
            id=Long(record.id),
            external_id=record.external_id,
            game_id=record.game_id,
            moneyline=MoneyLine(
                home=odds.price_json(line.home),
                away=odds.price_json(line.away),
                draw=None if line.draw is None else odds.price_json(line.draw),
            ),
            deleted=record.deleted,
            created_at=record.created_at,
            updated_at=record.updated_at,
            status=MarketStatus(record.status.value),
            position=Long(record.position),
            record=record,
        )

    @strawberry.field(
        description="the prices in decimal and fractional odds as the odds formats write "
        "them, exact whatever the price (`moneyline` writes 8/13 to six places only)"
    )
    def moneyline_text(self) -> MoneyLineText:
        line = self.record.money_line
        return MoneyLineText(
            home=PriceText.of(line.home),
            away=PriceText.of(line.away),
            draw=None if line.draw is None else PriceText.of(line.draw),
        )


@strawberry.type(description="A page of markets, oldest first")
class OddsPage:
    items: list[Odds]
    total: int = strawberry.field(
        description="how many markets are listed (every market not over, the last few that are)"
    )
    page_no: int
    page_size: int


@strawberry.type(description="An entry of a market's odds event log")
class OddsEvent:
    id: Long = strawberry.field(description="the event's log position")
    odds_id: Long = strawberry.field(description="the market's id")
    event_id: str = strawberry.field(description="the stored event's UUID")
    created_at: datetime


@strawberry.type(description="A page of a market's odds event log, oldest first")
class OddsEventPage:
    items: list[OddsEvent]
    total: int = strawberry.field(description="how many events the market has")
    page_no: int
    page_size: int


def _services(info: Info) -> Services:
    services: Services = info.context["request"].app.state.services
    return services


async def _readable(info: Info, min_position: int | None) -> Services:
    """The services, once the odds view includes ``min_position`` (read-your-writes)."""
    services = _services(info)
    assert services.odds_view is not None
    if min_position is not None and not 0 <= min_position <= MAX_POSITION:
        raise ApiError(422, "invalid_request", f"min_position is 0 to {MAX_POSITION}")
    await await_reads(services, services.odds_view, min_position, "odds reads")
    return services


@strawberry.type
class Query:
    @strawberry.field(
        name="getOdds",
        description="A page of markets, oldest first; with `after_id` (the last id seen), of "
        "the markets whose id is above it: pages that neither skip nor repeat a market as "
        "markets finish",
    )
    async def get_odds(
        self,
        info: Info,
        page_no: int = odds.DEFAULT_PAGE_NO,
        page_size: int = odds.DEFAULT_PAGE_SIZE,
        min_position: Long | None = None,
        after_id: Long | None = None,
    ) -> OddsPage:
        try:
            services = await _readable(info, min_position)
            assert services.odds_view is not None
            odds.check_page(page_no, page_size)
            cursor = 0 if after_id is None else int(after_id)
            odds.check_after_id(cursor)
            view = services.odds_view
            items = [Odds.of(r) for r in view.page(page_no, page_size, cursor)]
        except ApiError as exc:
            raise refused(exc) from None
        return OddsPage(items=items, total=len(view), page_no=page_no, page_size=page_size)

    @strawberry.field(
        name="getOddsByExternalId", description="A market's record; null when there is none"
    )
    async def get_odds_by_external_id(
        self,
        info: Info,
        external_id: str,
        min_position: Long | None = None,
    ) -> Odds | None:
        try:
            services = await _readable(info, min_position)
            assert services.odds_view is not None
            odds.check_external_id(external_id)
            record = await services.odds_view.find(external_id)
        except ApiError as exc:
            raise refused(exc) from None
        return None if record is None else Odds.of(record)

    @strawberry.field(
        name="getOddsEvents",
        description="A page of a market's odds event log, oldest first (an error "
        "`market_not_found` for an unknown market)",
    )
    async def get_odds_events(
        self,
        info: Info,
        external_id: str,
        page_no: int = odds.DEFAULT_PAGE_NO,
        page_size: int = odds.DEFAULT_PAGE_SIZE,
        min_position: Long | None = None,
    ) -> OddsEventPage:
        try:
            services = await _readable(info, min_position)
            assert services.odds_view is not None
            record, events = await odds.market_events(
                services.odds_view, services.store, external_id, page_no, page_size
            )
        except ApiError as exc:
            raise refused(exc) from None
        items = [
            OddsEvent(
                id=Long(e.position),
                odds_id=Long(record.id),
                event_id=str(e.event_id),
                created_at=e.recorded_at,
            )
            for e in events
        ]
        return OddsEventPage(
            items=items, total=record.version, page_no=page_no, page_size=page_size
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        name="getInstantOdds",
        description="Each change of a market (created, prices updated, deleted…) as its "
        "new record, in log order. First, with `current: true`, the record of every "
        "market the filter matches (oldest first), then the changes after them, none "
        "missed. A subscriber that falls behind gets the latest record of each market "
        "it missed; one that falls far behind is ended with `subscriber_too_slow`.",
    )
    async def get_instant_odds(
        self,
        info: Info,
        game_id: str | None = None,
        external_id: str | None = None,
        current: bool = False,
    ) -> AsyncGenerator[Odds, None]:
        try:
            services = _services(info)
            assert services.odds_hub is not None
            if game_id is not None and not _GAME.fullmatch(game_id):
                raise ApiError(422, "invalid_request", "game_id is 1-100 of A-Z a-z 0-9 . _ : -")
            if external_id is not None:
                odds.check_external_id(external_id)
            records = services.odds_hub.follow(OddsFilter(game_id, external_id), current)
            async for record in records:
                # one Odds per pushed record, whatever the number of its subscribers;
                # by the record's value: (market, position) names one record per store,
                # and two stores in one process (the tests) can share both
                yield _pushed.get(record, partial(Odds.of, record))
        except ApiError as exc:
            raise refused(exc) from None
        except Exception:
            # raised by the stream, the error has no path and the masking rule lets it
            # through as it is: masked here
            log.exception("getInstantOdds failed")
            raise GraphQLError(MASKED) from None


#: the Odds of the records pushed lately (an immutable record makes one Odds)
_pushed: Latest[OddsRecord, Odds] = Latest(MAX_SHARED)


def _too_large(query: str | None) -> GraphQLError | None:
    """The refusal of a document longer than ``MAX_DOCUMENT_CHARS``, if it is."""
    if query is not None and len(query) > MAX_DOCUMENT_CHARS:
        return GraphQLError(
            f"a document is at most {MAX_DOCUMENT_CHARS} characters",
            extensions={"code": "document_too_large", "status": 413},
        )
    return None


class _DocumentSize(SchemaExtension):
    """Refuses a document longer than ``MAX_DOCUMENT_CHARS`` before it is parsed
    (tokens are counted by the parser; this bounds comments and blanks too). Over
    WebSocket :meth:`_Schema.stream` refuses it first: an error raised by an extension's
    hook is lost on Strawberry's streams."""

    def on_parse(self) -> Any:
        refusal = _too_large(self.execution_context.query)
        if refusal is not None:
            raise refusal
        yield


#: characters in a document
MAX_DOCUMENT_CHARS = 20_000


async def _refused_stream(error: GraphQLError) -> AsyncGenerator[PreExecutionError, None]:
    yield PreExecutionError(data=None, errors=[error])


class _Schema(strawberry.Schema):
    """Strawberry's schema, refusing a document too large for a WebSocket operation as
    an error before execution: the ``error`` message for the operation's id, in either
    protocol.

    Strawberry runs the operations of both WebSocket protocols through
    :meth:`stream`, which lets an exception raised by an extension's ``on_parse`` hook
    out of the stream instead of making it a result (``execute``, used over HTTP, makes
    it one): ``_DocumentSize``'s refusal reached a ``graphql-transport-ws`` client as a
    bare ``complete`` and a legacy ``graphql-ws`` client as nothing at all."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """As Strawberry's, but never a subscription (this runs the HTTP requests; the
        router has no HTTP stream transport): Strawberry allows one by ``POST`` for its
        multipart protocol, ran ``getInstantOdds`` as a query, and answered "Unexpected
        error." with an exception logged for each request. Now 400, saying so."""
        allowed = set(
            DEFAULT_ALLOWED_OPERATION_TYPES
            if allowed_operation_types is None
            else allowed_operation_types
        )
        allowed.discard(OperationType.SUBSCRIPTION)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        refusal = _too_large(query)
        if refusal is not None:
            return _refused_stream(refusal)
        return await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )


class _AliasLimit(ValidationRule):
    """Refuses a document with more than ``MAX_ALIASES`` aliases, each counted once where
    it is written (with the message of Strawberry's ``MaxAliasesLimiter``, which counted
    an alias once per path through the fragments: every path, as its depth limiter
    walked them). Only ``Query`` has fields worth aliasing, and its fields are selected
    once however many times a fragment holding them is spread, so the aliases written
    bound the pages built."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._aliases = 0

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.alias is not None:
            self._aliases += 1

    def leave_document(self, *_: Any) -> None:
        if self._aliases > MAX_ALIASES:
            self.report_error(
                GraphQLError(f"{self._aliases} aliases found. Allowed: {MAX_ALIASES}")
            )


class _DepthLimit(ValidationRule):
    """Refuses an operation whose selections nest deeper than ``MAX_DEPTH`` fields (a
    field without a selection, or an introspection field, counts 0; a fragment counts as
    its selections), with the message of Strawberry's ``QueryDepthLimiter``.

    That one walks every path through the fragments: a few fragments each spreading the
    next ten times (a thousand characters) took it days. Here a fragment's depth is
    found once per remaining room (at most ``MAX_DEPTH + 1`` times), and no walk goes
    more than one field past the limit. A fragment cycle or an unknown fragment counts 0:
    the specified rules refuse those documents (Strawberry's raised a ``KeyError`` for an
    unknown fragment and answered its name as the message)."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        #: (fragment, room) -> its depth, at most room + 1
        self._known: dict[tuple[str, int], int] = {}
        self._walking: set[str] = set()

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        if self._depth(node.selection_set.selections, MAX_DEPTH) > MAX_DEPTH:
            name = node.name.value if node.name else "anonymous"
            self.report_error(
                GraphQLError(f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}", node)
            )

    def _depth(self, selections: Any, room: int) -> int:
        """The depth of ``selections``, or any depth past ``room`` once it is past."""
        deepest = 0
        for selection in selections:
            deepest = max(deepest, self._depth_of(selection, room))
            if deepest > room:
                break
        return deepest

    def _depth_of(self, selection: SelectionNode, room: int) -> int:
        if isinstance(selection, FieldNode):
            if selection.selection_set is None or selection.name.value.startswith("__"):
                return 0
            if room == 0:
                return 1
            return 1 + self._depth(selection.selection_set.selections, room - 1)
        if isinstance(selection, InlineFragmentNode):
            return self._depth(selection.selection_set.selections, room)
        assert isinstance(selection, FragmentSpreadNode)
        name = selection.name.value
        known = self._known.get((name, room))
        if known is not None:
            return known
        fragment = self.context.get_fragment(name)
        if fragment is None or name in self._walking:
            return 0
        self._walking.add(name)
        try:
            depth = self._depth(fragment.selection_set.selections, room)
        finally:
            self._walking.discard(name)
        self._known[(name, room)] = depth
        return depth


#: the message of an unexpected exception
MASKED = "Unexpected error."


def _mask(error: GraphQLError) -> bool:
    """Mask an unexpected exception of a resolver (an error with a ``path``: raised
    while executing); refusals are GraphQL errors, and the errors of parsing and
    validation (a scalar's parser included) carry no path and say what was wrong. An
    exception out of a subscription's stream has no path either: ``getInstantOdds``
    masks its own."""
    original = error.original_error
    return (
        error.path is not None and original is not None and not isinstance(original, GraphQLError)
    )


class _Executor(SharedPushExecutor):
    """Pushes of ``getInstantOdds`` executed and encoded once per subscription document
    (:mod:`.graphql_fanout`): every field of a push is read from its record, so the
    record's value is the push's key (not its market and position alone, which two
    stores in one process can share with other prices)."""

    @staticmethod
    def event_key(root_value: Any) -> Any:
        if isinstance(root_value, Odds):
            return root_value.record
        return None


schema = _Schema(
    query=Query,
    subscription=Subscription,
    execution_context_class=_Executor,
    config=StrawberryConfig(
        auto_camel_case=False,
        scalar_map={
            Long: strawberry.scalar(
                name="Long",
                description="a signed 64-bit integer (a JSON number)",
                serialize=int,
                parse_value=_parse_long,
            ),
        },
    ),
    scalar_overrides={
        Decimal: strawberry.scalar(
            name="Decimal",
            description='a decimal number as a string of its exact digits ("1.91"): '
            "a GraphQL Float is a binary double, which holds 1.91 only approximately",
            serialize=lambda value: format(value, "f"),
            parse_value=_parse_decimal,
        ),
        datetime: strawberry.scalar(
            name="DateTime",
            description="UTC to the microsecond, as the REST routes write it "
            "(2026-11-29T20:42:55.123456Z)",
            serialize=odds.time_text,
            parse_value=_parse_time,
        ),
    },
    # factories: an extension holds the state of one operation, so each gets its own
    extensions=[
        _DocumentSize,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules([_DepthLimit, _AliasLimit]),
        lambda: CheapMaskErrors(should_mask_error=_mask, error_message=MASKED),
    ],
)


def _operation_problem(payload: object) -> str | None:
    """What is wrong with a WebSocket operation's payload (``subscribe``'s or
    ``start``'s), or ``None``: ``query`` a string, ``variables`` an object and
    ``operationName`` a string if they are given (graphql-transport-ws's
    ``SubscribePayload``; HTTP refuses the same with 400)."""
    if not isinstance(payload, dict):
        return "an operation's payload is an object"
    if not isinstance(payload.get("query"), str):
        return "an operation's query is a string"
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return "an operation's variables are an object"
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        return "an operation's operationName is a string"
    return None


class _TransportWSHandler(SharedTransportWSHandler):
    """``graphql-transport-ws``, a message of a format the protocol does not define
    closing the connection with 4400 and what was wrong, as the protocol says.
    Strawberry's handler read the message as it came: a message that is not an object,
    a ``subscribe`` whose payload is not one or whose id is not a string, or a
    ``complete`` with such an id raised out of the handler (the socket dropped without
    a close frame, the exception logged), and a ``query`` that is not a string or
    ``variables`` that are not an object reached the operation (a bare ``complete``, or
    Python's exception text as its error)."""

    async def handle_message(self, message: Any) -> None:
        problem: str | None = None
        if not isinstance(message, dict):
            problem = "a message is a JSON object"
        elif not isinstance(message.get("type"), str):
            problem = "a message's type is a string"
        elif message["type"] in ("subscribe", "complete"):
            if not isinstance(message.get("id"), str):
                problem = "an operation's id is a string"
            elif message["type"] == "subscribe":
                problem = _operation_problem(message.get("payload"))
        if problem is not None:
            await self.handle_invalid_message(f"Invalid message received: {problem}")
            return
        await super().handle_message(message)


class _LegacyWSHandler(SharedLegacyWSHandler):
    """The legacy ``graphql-ws``: a message that is not an object (or has no type), or a
    ``start`` or ``stop`` whose id is not a string, is ignored (as one that is not JSON is: there is
    no id to answer), and a ``start`` whose payload is malformed (``_operation_problem``)
    gets the operation's ``error`` message (``invalid_request``), the connection going
    on. Strawberry's handler raised out on the first ones (the socket dropped, the
    exception logged), and passed the others to the operation."""

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return
        kind = message["type"]
        if kind in ("start", "stop") and not isinstance(message.get("id"), str):
            return
        if kind == "start" and self.connection_acknowledged:
            problem = _operation_problem(message.get("payload"))
            if problem is not None:
                error = GraphQLError(problem, extensions={"code": "invalid_request", "status": 400})
                await self.send_message(
                    {"type": "error", "id": message["id"], "payload": error.formatted}
                )
                return
        await super().handle_message(message)  # type: ignore[arg-type]  # checked above


class _Router(GraphQLRouter[Any, Any]):
    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(self, *args: Any, max_sockets: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_sockets = max_sockets
        self._sockets = 0

    @property
    def sockets(self) -> int:
        """The GraphQL WebSockets open now."""
        return self._sockets

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """As Strawberry's, with at most ``max_sockets`` WebSockets open at once: past it
        the handshake is refused (403). Uvicorn's connection cap counts open WebSockets
        but never refuses an upgrade."""
        if not self.is_websocket_request(request):
            return await super().run(request, context, root_value)
        if self._sockets >= self._max_sockets:
            return await self.reject_websocket(request)
        self._sockets += 1
        try:
            return await super().run(request, context, root_value)
        finally:
            self._sockets -= 1

    def parse_json(self, data: str | bytes) -> Any:
        """A request's body: a JSON object, else 400 (Strawberry took any JSON value,
        and answered a string, invalid UTF-8 or nesting too deep with a 500)."""
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError):  # (JSONDecodeError, UnicodeDecodeError)
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(parsed, dict):
            raise HTTPException(400, "a GraphQL request is a JSON object")
        return parsed


def graphql_router(max_sockets: int) -> _Router:
    """``/api/graphql``: queries by ``POST``, subscriptions over WebSocket (at most
    ``max_sockets`` at once). No GraphiQL page and no queries by ``GET``; introspection
    is on."""
    return _Router(
        schema,
        path=PATH,
        graphql_ide=None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_SECONDS),
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
        include_in_schema=False,
        max_sockets=max_sockets,
    )
