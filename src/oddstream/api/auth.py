"""API keys and roles.

Four roles: ``admin`` (schedule and settle races, credit any wallet, read any wallet;
on the Confluent-compatible surfaces, everything; post quote events), ``customer`` (one
wallet: read it, withdraw from it, bet from it), ``producer`` (the Confluent-compatible
surfaces only: register schemas, produce to topics; see
:mod:`oddstream.integrations.kafka.access_policy`) and ``ingest`` (post quote events,
``POST /quotes/events``, and nothing else but what needs no key: a feed's key, which
cannot run races or move money) and ``provider`` (an odds provider's: the fixed-odds
commands ``POST``/``PATCH``/``DELETE /odds`` for its own markets, in its own name).
A key is presented as ``X-API-Key: …`` or ``Authorization: Bearer …`` (the compat
surfaces also take ``Authorization: Basic``, as Confluent clients send it).

Keys come from configuration: ``ODDSTREAM_ADMIN_KEY``, ``ODDSTREAM_CUSTOMER_KEYS``
(``key=wallet,…``) and ``ODDSTREAM_API_KEYS_FILE``, a JSON file::

    {"keys": [{"key": "…", "role": "admin"},
              {"key_sha256": "<hex>", "role": "customer", "wallet": "alice"},
              {"key": "…", "role": "producer"},
              {"key": "…", "role": "ingest"},
              {"key": "…", "role": "provider", "provider": "acme"}]}

Only SHA-256 digests of keys are kept in memory, and a presented key is looked up by
its digest: comparing digests reveals nothing about the secret a guess was close to.

Answers never reveal whether a wallet exists: no key is 401, a key that is unknown or
may not do this is 403, before any wallet is looked at.

Keys given in clear must be strong: :func:`estimated_bits` at least ``MIN_KEY_BITS`` (a
run, a sequence, a keyboard walk, a repeated word or a small alphabet is refused at
start). A digest's key is not known, so digests are taken as they are: they must come
from a generator (128 bits or more, as ``secrets.token_urlsafe(24)`` makes).

Guessing is limited: a client address that presented more than
``ODDSTREAM_AUTH_FAILURE_LIMIT`` unknown keys within ``ODDSTREAM_AUTH_FAILURE_WINDOW_SECONDS``
gets 429 with ``Retry-After`` until its window ends, without the key being looked at —
except a key that authenticated from that address within the last 24 hours, so that
clients already working behind a shared address keep working (:class:`FailureLimiter`).
Refusals are counted by reason (``oddstream_auth_refused_total``, :mod:`.metrics`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import math
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from fastapi import Request

from ..application.access import Principal, Role
from ..application.errors import ApiError
from ..config import Settings

_ROLES = ("admin", "customer", "producer", "ingest", "provider")
_ROLE_NAMES = "admin, customer, producer, ingest or provider"
_WALLET_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
RefusalReason = Literal["unknown_key", "locked"]
#: why :func:`principal_of` refuses a key (the label of ``oddstream_auth_refused_total``)
REFUSAL_REASONS: tuple[RefusalReason, ...] = ("unknown_key", "locked")
MIN_KEY_LENGTH = 16
#: the least estimated entropy of a key given in clear (``secrets.token_urlsafe(16)``
#: has 128 bits; ``estimated_bits`` puts it near 90)
MIN_KEY_BITS = 64


class KeyConfigError(ValueError):
    """The configured keys are unusable (the service refuses to start)."""


def digest(key: str) -> bytes:
    """The SHA-256 digest a key is known by (raw bytes: hexdigest cost as much again)."""
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The configured keys, by digest."""

    def __init__(self, failures: FailureLimiter | None = None) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        #: failed key lookups by client address
        self.failures = failures if failures is not None else FailureLimiter()

    def __len__(self) -> int:
        return len(self._by_digest)

    def add(
        self, key: str, role: Role, wallet_id: str | None = None, provider: str | None = None
    ) -> None:
        """Add a key in clear (at least 16 printable characters and ``MIN_KEY_BITS``)."""
        if len(key) < MIN_KEY_LENGTH or not key.isprintable() or key != key.strip():
            raise KeyConfigError(f"API keys must be at least {MIN_KEY_LENGTH} printable characters")
        bits = estimated_bits(key)
        if bits < MIN_KEY_BITS:
            raise KeyConfigError(
                f"a {role} API key is too weak: about {bits:.0f} bits of entropy, at least "
                f"{MIN_KEY_BITS} needed (runs, keyboard walks, repeats and small alphabets "
                "count little); "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        self.add_digest(digest(key).hex(), role, wallet_id, provider)

    def add_digest(
        self,
        key_sha256: str,
        role: Role,
        wallet_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Add a key by its SHA-256 hex digest (a provider key names its ``provider``)."""
        if not _HEX64.match(key_sha256):
            raise KeyConfigError("key_sha256 must be 64 lowercase hex digits")
        if role not in _ROLES:
            raise KeyConfigError(f"unknown role {role!r} ({_ROLE_NAMES})")
        if role == "provider":
            if provider is None or not _WALLET_ID.match(provider):
                raise KeyConfigError("a provider key needs a provider id ([A-Za-z0-9._:-], ≤100)")
        elif provider is not None:
            raise KeyConfigError(f"only a provider key names a provider, not a {role} key")
        if role == "customer":
            if wallet_id is None or not _WALLET_ID.match(wallet_id):
                raise KeyConfigError("a customer key needs a wallet id ([A-Za-z0-9._:-], ≤100)")
        elif wallet_id is not None:
            raise KeyConfigError(
                f"{'an' if role in ('admin', 'ingest') else 'a'} {role} key names no wallet"
            )
        raw = bytes.fromhex(key_sha256)
        if raw in self._by_digest:
            raise KeyConfigError("the same key is configured twice")
        self._by_digest[raw] = Principal(role, wallet_id, provider)

    def lookup(self, key: str) -> Principal | None:
        """The principal of a presented key, or ``None``."""
        return self._by_digest.get(digest(key))

    def lookup_digest(self, key_digest: bytes) -> Principal | None:
        """The principal of a key by its raw SHA-256 digest (:func:`digest`), or ``None``."""
        return self._by_digest.get(key_digest)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, extra: Iterable[tuple[str, Role, str | None]] = ()
    ) -> KeyRing:
        """The keys ``settings`` name (and ``extra`` ones, e.g. the demo's)."""
        ring = cls(
            FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds)
        )
        if settings.admin_key:
            ring.add(settings.admin_key, "admin")
        if settings.customer_keys:
            for pair in settings.customer_keys.split(","):
                key, sep, owner = pair.strip().partition("=")
                if not sep:
                    raise KeyConfigError("ODDSTREAM_CUSTOMER_KEYS takes key=wallet pairs")
                ring.add(key, "customer", owner)
        if settings.api_keys_file:
            ring._load_file(Path(settings.api_keys_file))
        for key, role, wallet in extra:
            ring.add(key, role, wallet)
        return ring

    def _load_file(self, path: Path) -> None:
        try:
            entries = json.loads(path.read_text())["keys"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyConfigError(f"cannot read API keys from {path}: {exc}") from None
        if not isinstance(entries, list):
            raise KeyConfigError(f"{path}: 'keys' must be a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise KeyConfigError(f"{path}: each key is an object")
            role, wallet = entry.get("role"), entry.get("wallet")
            provider = entry.get("provider")
            if role not in _ROLES:
                raise KeyConfigError(f"{path}: unknown role {role!r} ({_ROLE_NAMES})")
            if provider is not None and not isinstance(provider, str):
                raise KeyConfigError(f"{path}: a provider is a string")
            if "key" in entry:
                self.add(str(entry["key"]), role, wallet, provider)
            elif "key_sha256" in entry:
                self.add_digest(str(entry["key_sha256"]), role, wallet, provider)
            else:
                raise KeyConfigError(f"{path}: each entry needs 'key' or 'key_sha256'")


def estimated_bits(key: str) -> float:
    """A conservative estimate of a key's entropy in bits: the lesser of

    - its structure, the cheapest parse of the key into pieces: a character costs log2
      of the alphabet its character classes suggest (lower case 26, upper case 26,
      digits 10, other ASCII 33, anything else 100), or, on a key next to the previous
      character's on a US keyboard (in any direction, shifted or not), log2 of the
      number of such characters in those classes (a walk that turns: ``zaq12wsx``);
      a pattern of 1 to 4 interleaved sequences of three or more characters, each with
      a constant step in code points (up to ±5: ``abcd``, ``4321``, ``aaaa``, ``ACEG``)
      or on the keyboard (one key in the same direction: ``qwerty``, ``!@#$``,
      ``1qaz``), costs each sequence's first character and step (nothing for ±1, 0 and
      along a row, log2(12) for the others) and log2 of the pattern's length
      (``1a2b3c``, ``1q2w3e``, ``1qaz2wsx3edc``); a repetition of three or more
      characters that appeared earlier (``changeme-changeme``, ``abcabcabc``: the copy
      may overlap itself) costs log2 of the number of earlier positions it could copy
      from, its length free — so a unit repeated any number of times costs the unit
      and a few bits;
    - its letter frequencies: length × the Shannon entropy of its characters (a small
      alphabet, however long the key, stays small).
    """
    if not key:
        return 0.0
    classes = {_char_class(c) for c in key}
    per_char = math.log2(sum(_CLASS_SIZES[k] for k in classes))
    n = len(key)
    counts = Counter(key).values()
    shannon = -sum(c / n * math.log2(c / n) for c in counts) * n
    alone = _alone_bits(key, per_char, classes)
    return max(0.0, min(_structure_bits(key, per_char, alone), shannon))


#: the alphabet each character class suggests: lower case, upper case, digits, other
#: ASCII, anything else
_CLASS_SIZES = (26, 26, 10, 33, 100)


def _char_class(c: str) -> int:
    """The class of ``c``: an index into ``_CLASS_SIZES``."""
    if "a" <= c <= "z":
        return 0
    if "A" <= c <= "Z":
        return 1
    if "0" <= c <= "9":
        return 2
    return 3 if c.isascii() else 4


#: the shortest repetition :func:`estimated_bits` prices as a back-reference
_MIN_REPEAT = 3
#: earlier occurrences of a 3-gram compared when looking for the longest repetition
#: (a bound on the work for long, repetitive keys, as in zlib's hash chains)
_REPEAT_CANDIDATES = 32
#: the most interleaved sequences a pattern may have (``1a2b3c``: 2; ``1qaz2wsx``: 4)
_MAX_LAG = 4
#: the largest code-point step of a sequence (``ACEG``: 2, ``adgj``: 3)
_MAX_CODE_STEP = 5
#: the steps a sequence may take besides the obvious ones (code-point steps of -1, 0,
#: +1 and one key along a row): code-point steps of ±2…±5 and four diagonal keys
_OTHER_STEP_BITS = math.log2(2 * (_MAX_CODE_STEP - 1) + 4)
#: a US QWERTY keyboard, unshifted and shifted: (keys of a row, where its first key is
#: in half-key units), each row half a key right of the one above, as keyboards are
_KEYBOARD = (
    ("`1234567890-=", "~!@#$%^&*()_+", 0),
    ("qwertyuiop[]\\", "QWERTYUIOP{}|", 3),
    ("asdfghjkl;'", 'ASDFGHJKL:"', 4),
    ("zxcvbnm,./", "ZXCVBNM<>?", 5),
)
#: a character's key: (row, column in half keys), shifted or not
_KEY_POSITION = {
    c: (row, offset + 2 * col)
    for row, (plain, shifted, offset) in enumerate(_KEYBOARD)
    for keys in (plain, shifted)
    for col, c in enumerate(keys)
}
#: from a key to a neighbour: along the row, and up or down to the two keys it touches
_KEY_STEPS = frozenset({(0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1)})
_ROW_STEPS = frozenset({(0, -2), (0, 2)})
#: the characters on the keys next to a character's, and on its own key (shift)
_NEIGHBOURS = {
    c: frozenset(
        d
        for d, (row2, col2) in _KEY_POSITION.items()
        if (row2 - row, col2 - col) in _KEY_STEPS or ((row2, col2) == (row, col) and d != c)
    )
    for c, (row, col) in _KEY_POSITION.items()
}

#: a step from one character to another: ("code", code-point difference) or ("key",
#: (rows, half keys))
_Step = tuple[str, int | tuple[int, int]]


def _steps(a: str, b: str) -> tuple[_Step | None, _Step | None]:
    """The step from ``a`` to ``b`` in code points and on the keyboard (``None`` where
    they are too far apart for a sequence)."""
    delta = ord(b) - ord(a)
    code: _Step | None = ("code", delta) if abs(delta) <= _MAX_CODE_STEP else None
    pa, pb = _KEY_POSITION.get(a), _KEY_POSITION.get(b)
    key: _Step | None = None
    if pa is not None and pb is not None:
        move = (pb[0] - pa[0], pb[1] - pa[1])
        key = ("key", move) if move in _KEY_STEPS else None
    return code, key


def _step_bits(step: _Step) -> float:
    """What the choice of a sequence's step costs: nothing for -1, 0, +1 and along a
    row (the obvious ones), else log2 of the number of other steps."""
    kind, move = step
    if (kind == "code" and move in (-1, 0, 1)) or (kind == "key" and move in _ROW_STEPS):
        return 0.0
    return _OTHER_STEP_BITS


def _sequences(key: str, lag: int) -> list[tuple[int, float]]:
    """For each position ``p``, the longest sequence ``key[p], key[p + lag], …`` with a
    constant step, in code points or on the keyboard: (how many characters it has, what
    its step costs); (1, 0) where there is none."""
    n = len(key)
    found = [(1, 0.0)] * n
    steps = [_steps(key[p], key[p + lag]) for p in range(n - lag)]
    for space in (0, 1):
        length = [1] * n
        for p in range(n - lag - 1, -1, -1):
            step = steps[p][space]
            if step is None:
                continue
            after = p + lag
            length[p] = length[after] + 1 if after < n - lag and steps[after][space] == step else 2
            bits = _step_bits(step)
            if length[p] > found[p][0] or (length[p] == found[p][0] and bits < found[p][1]):
                found[p] = (length[p], bits)
    return found


def _patterns(key: str, per_char: float) -> list[list[tuple[int, float]]]:
    """For each position, the patterns starting there: (length, cost). A pattern
    interleaves ``lag`` sequences of three or more characters each (``abc``: one;
    ``1a2b3c``: two; ``1qaz2wsx3edc``: four, along rows), and costs the first character
    and the step of each sequence, and log2 of its length."""
    n = len(key)
    found: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for lag in range(1, _MAX_LAG + 1):
        sequences = _sequences(key, lag)
        for i in range(n - 3 * lag + 1):
            starts = sequences[i : i + lag]
            length = min(n - i, *(lag * count + r for r, (count, _) in enumerate(starts)))
            if length >= 3 * lag:
                bits = sum(per_char + step_bits for _, step_bits in starts)
                found[i].append((length, bits + math.log2(length)))
    return found


def _alone_bits(key: str, per_char: float, classes: set[int]) -> list[float]:
    """What each character costs alone: ``per_char``, or, on a key next to the previous
    character's (or on the same key, shifted), log2 of the number of such characters
    in the key's classes: a walk over the keyboard that turns as it likes."""
    bits = [per_char] * len(key)
    for i in range(1, len(key)):
        neighbours = _NEIGHBOURS.get(key[i - 1])
        if neighbours is not None and key[i] in neighbours:
            choices = sum(1 for c in neighbours if _char_class(c) in classes)
            bits[i] = min(per_char, math.log2(choices))
    return bits


def _structure_bits(key: str, per_char: float, alone: list[float]) -> float:
    """The cost of the cheapest parse of ``key`` into characters (``alone``),
    patterns (:func:`_patterns`) and back-references (log2 of the position: any length
    from ``_MIN_REPEAT`` up to the longest match)."""
    n = len(key)
    patterns = _patterns(key, per_char)
    repeats = _repeat_lengths(key)
    best = [0.0] + [math.inf] * n
    #: back-references by the first position they may end at: (cost, last end)
    starting: list[list[tuple[float, int]]] = [[] for _ in range(n + 1)]
    open_refs: list[tuple[float, int]] = []  # a heap of the back-references reaching here
    for i in range(n + 1):
        for ref in starting[i]:
            heapq.heappush(open_refs, ref)
        while open_refs and open_refs[0][1] < i:
            heapq.heappop(open_refs)
        if open_refs:
            best[i] = min(best[i], open_refs[0][0])
        if i == n:
            break
        cost = best[i]
        best[i + 1] = min(best[i + 1], cost + alone[i])
        for length, bits in patterns[i]:
            best[i + length] = min(best[i + length], cost + bits)
        if repeats[i] >= _MIN_REPEAT:
            starting[i + _MIN_REPEAT].append((cost + math.log2(i), i + repeats[i]))
    return best[n]


def _repeat_lengths(key: str) -> list[int]:
    """For each position, the length of the longest earlier copy of what starts there
    (the copy may overlap: in ``abababab`` position 2 repeats 6 characters), or 0."""
    n = len(key)
    lengths = [0] * n
    seen: dict[str, list[int]] = {}
    for i in range(n - _MIN_REPEAT + 1):
        earlier = seen.setdefault(key[i : i + _MIN_REPEAT], [])
        for j in reversed(earlier[-_REPEAT_CANDIDATES:]):
            lo, hi = _MIN_REPEAT, n - i  # key[j:j+lo] == key[i:i+lo]; find the longest
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if key[j : j + mid] == key[i : i + mid]:
                    lo = mid
                else:
                    hi = mid - 1
            lengths[i] = max(lengths[i], lo)
            if i + lo == n:
                break
        earlier.append(i)
    return lengths


class FailureLimiter:
    """Failed authentications per client address, in fixed windows: past ``limit``
    failures within ``window`` seconds of an address's first one, that address is
    refused until the window ends. Memory is bounded: at most ``max_clients`` addresses
    are tracked (the least recently failing one is forgotten first) and expired windows
    are dropped as new failures come.

    So that a guesser behind a shared address (NAT, a proxy) does not shut out the
    clients already working from it, a key that authenticated from an address within
    the last ``trusted_for`` seconds still passes while that address is refused
    (:meth:`refusal`). Any other key from it is refused without being looked up, even a
    correct one never used from there yet: the guesser's keys never succeeded, so the
    refusal tells it nothing. The remembered (address, key digest) pairs are bounded too:
    at most ``max_trusted_per_key`` addresses per key and ``max_trusted`` pairs in all
    (100,000 pairs take 40–50 MB with IPv6 addresses), the least recently successful
    forgotten first, expired ones dropped as successes come. The bound per key is what
    keeps one key used from many addresses (one client with a block of IPv6 addresses)
    from pushing every other key's pairs out.

    Refused authentications are counted by reason in :attr:`refused` (for metrics)."""

    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        trusted_for: float = 86_400.0,
        max_trusted: int = 100_000,
        max_trusted_per_key: int = 32,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self.trusted_for = trusted_for
        self.max_trusted = max_trusted
        self.max_trusted_per_key = max_trusted_per_key
        self._clock = clock
        #: address → (window start, failures in it), least recently failing first
        self._table: OrderedDict[str, tuple[float, int]] = OrderedDict()
        #: (address, key digest) → time of its last success, least recent first
        self._trusted: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        #: key digest → its addresses in ``_trusted``, least recently successful first
        self._addresses: dict[bytes, OrderedDict[str, None]] = {}
        #: refused authentications since start, by reason: "unknown_key" (403) and
        #: "locked" (429, the key not looked up)
        self.refused: dict[RefusalReason, int] = dict.fromkeys(REFUSAL_REASONS, 0)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def trusted_pairs(self) -> int:
        """How many (address, key digest) pairs are remembered as recently successful."""
        return len(self._trusted)

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try keys again, or ``None`` if it may now."""
        entry = self._table.get(client)
        if entry is None:
            return None
        started, failures = entry
        left = started + self.window - self._clock()
        if left <= 0:
            del self._table[client]
            return None
        return left if failures >= self.limit else None

    def refusal(self, client: str, key_digest: bytes) -> float | None:
        """Seconds until the key of digest ``key_digest`` from ``client`` may be looked
        up, or ``None`` if it may now: ``client`` is within its limit, or this key
        authenticated from it within ``trusted_for`` seconds."""
        wait = self.retry_after(client)
        if wait is None:
            return None
        seen = self._trusted.get((client, key_digest))
        if seen is not None and seen + self.trusted_for > self._clock():
            return None
        return wait

    def failed(self, client: str) -> None:
        """Count a failed authentication from ``client``."""
        now = self._clock()
        table = self._table
        entry = table.pop(client, None)
        if entry is None or entry[0] + self.window <= now:
            entry = (now, 0)
        table[client] = (entry[0], entry[1] + 1)
        while table:  # the oldest entries first: drop the expired ones and any over the cap
            oldest, (started, _) = next(iter(table.items()))
            if len(table) <= self.max_clients and started + self.window > now:
                break
            del table[oldest]

    def succeeded(self, client: str, key_digest: bytes) -> None:
        """Remember that the key of digest ``key_digest`` authenticated from ``client``."""
        now = self._clock()
        trusted = self._trusted
        pair = (client, key_digest)
        trusted.pop(pair, None)
        trusted[pair] = now
        addresses = self._addresses.setdefault(key_digest, OrderedDict())
        addresses.pop(client, None)
        addresses[client] = None
        if len(addresses) > self.max_trusted_per_key:  # this key's least recent address
            self._forget((next(iter(addresses)), key_digest))
        while True:  # the least recent first: drop the expired ones and any over the cap
            oldest, seen = next(iter(trusted.items()))
            if len(trusted) <= self.max_trusted and seen + self.trusted_for > now:
                break
            self._forget(oldest)

    def _forget(self, pair: tuple[str, bytes]) -> None:
        del self._trusted[pair]
        address, key_digest = pair
        addresses = self._addresses[key_digest]
        del addresses[address]
        if not addresses:
            del self._addresses[key_digest]


def key_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key presented in raw ASGI headers (``X-API-Key`` wins over ``Authorization``)."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key" and value:
            return value.decode("latin-1")
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                bearer = rest.strip()
    return bearer


def basic_auth_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key in ``Authorization: Basic base64(user:password)``, as Confluent clients
    send ``basic.auth.user.info``: the password, or the user name if the password is
    empty. ``None`` without such a header; credentials that do not decode are ``""``,
    which no key matches (a client that sent something is not taken as anonymous)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                continue
            try:
                pair = base64.b64decode(rest.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ""
            user, _, password = pair.partition(":")
            return password or user
    return None


def principal_of(
    keys: KeyRing, key: str | None, client: tuple[str, int] | list[Any] | None = None
) -> Principal | None:
    """The principal for a presented key: ``None`` without a key; 403 for an unknown one;
    429 (the key not looked at) while ``client`` (the ASGI scope's ``client``) is over
    its limit of failed authentications, unless this key authenticated from that address
    recently (:meth:`FailureLimiter.refusal`)."""
    if key is None:
        return None
    address = str(client[0]) if client else None
    key_digest = digest(key)
    limiter = keys.failures
    if address is not None:
        wait = limiter.refusal(address, key_digest)
        if wait is not None:
            limiter.refused["locked"] += 1
            raise ApiError(
                429,
                "too_many_failures",
                f"too many unknown API keys from {address}; try again in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
    principal = keys.lookup_digest(key_digest)
    if principal is None:
        limiter.refused["unknown_key"] += 1
        if address is not None:
            limiter.failed(address)
        raise ApiError(403, "forbidden", "this API key is not known")
    if address is not None:
        limiter.succeeded(address, key_digest)
    return principal


def request_principal(request: Request) -> Principal | None:
    """The principal of a FastAPI request (``None`` without a key)."""
    keys: KeyRing = request.app.state.services.keys
    return principal_of(
        keys, key_from_headers(request.scope["headers"]), request.scope.get("client")
    )


def require_ingest(request: Request) -> None:
    """FastAPI dependency: 401 without a key, 403 with a key that is neither an ingest
    nor an admin key."""
    principal = request_principal(request)
    if principal is None:
        raise ApiError(401, "unauthenticated", "posting quote events needs an ingest or admin key")
    if not principal.may_ingest:
        raise ApiError(403, "forbidden", "only an ingest or admin key may post quote events")


def require_admin(request: Request) -> None:
    """FastAPI dependency: 401 without a key, 403 with a key that is not an admin's."""
    principal = request_principal(request)
    if principal is None:
        raise ApiError(401, "unauthenticated", "this action needs the admin API key")
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "this key may not perform admin actions")
