"""API keys from configuration: env pairs, a JSON file with keys or their digests, and
clear refusals for unusable configurations."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddstream.api.auth import (
    MIN_KEY_BITS,
    MIN_KEY_LENGTH,
    FailureLimiter,
    KeyConfigError,
    KeyRing,
    digest,
    estimated_bits,
    principal_of,
)
from oddstream.api.metrics import Metrics
from oddstream.application.access import Principal, authorize_wallet
from oddstream.application.errors import ApiError
from oddstream.config import Settings

from .conftest import ADMIN_KEY, CUSTOMER_KEYS

ADMIN = "admin-key-0123456789"
ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789xx"
ADMIN_STRONG = "admin-Hq3vN8xPz2Lk7Rw"


def test_keys_from_env_and_file(tmp_path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "key_sha256": hashlib.sha256(BOB.encode()).hexdigest(),
                        "role": "customer",
                        "wallet": "bob",
                    },
                    {"key": "second-admin-0123456789", "role": "admin"},
                ]
            }
        )
    )
    ring = KeyRing.from_settings(
        Settings().with_overrides(
            admin_key=ADMIN, customer_keys=f" {ALICE}=alice ", api_keys_file=str(keys)
        )
    )
    assert len(ring) == 4
    assert ring.lookup(ADMIN) == Principal("admin")
    assert ring.lookup("second-admin-0123456789") == Principal("admin")
    assert ring.lookup(ALICE) == Principal("customer", "alice")
    assert ring.lookup(BOB) == Principal("customer", "bob")  # known only by its digest
    assert ring.lookup("nobody-0123456789") is None
    assert ring.lookup(ALICE + " ") is None


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"admin_key": "short"}, "at least 16"),
        ({"customer_keys": "no-wallet-given-here"}, "key=wallet"),
        ({"customer_keys": f"{ALICE}=bad wallet!"}, "wallet id"),
        ({"customer_keys": f"{ALICE}=a,{ALICE}=b"}, "twice"),
        ({"admin_key": ALICE, "customer_keys": f"{ALICE}=alice"}, "twice"),
    ],
)
def test_unusable_env_keys_are_refused(settings, problem) -> None:
    with pytest.raises(KeyConfigError, match=problem):
        KeyRing.from_settings(Settings().with_overrides(**settings))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "cannot read"),
        ('{"nokeys": []}', "cannot read"),
        ('{"keys": {}}', "must be a list"),
        ('{"keys": ["x"]}', "each key is an object"),
        ('{"keys": [{"role": "admin"}]}', "needs 'key' or 'key_sha256'"),
        ('{"keys": [{"key": "k-7fQ2xLp9Rw4ZtB8m", "role": "root"}]}', "unknown role"),
        ('{"keys": [{"key_sha256": "abc", "role": "admin"}]}', "64 lowercase hex"),
        (
            '{"keys": [{"key": "k-7fQ2xLp9Rw4ZtB8m", "role": "admin", "wallet": "w"}]}',
            "names no wallet",
        ),
        ('{"keys": [{"key": "k-7fQ2xLp9Rw4ZtB8m", "role": "customer"}]}', "needs a wallet"),
    ],
)
def test_unusable_key_files_are_refused(tmp_path, content, problem) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(KeyConfigError, match=problem):
        KeyRing.from_settings(Settings().with_overrides(api_keys_file=str(path)))


def test_a_missing_key_file_is_refused(tmp_path) -> None:
    with pytest.raises(KeyConfigError, match="cannot read"):
        KeyRing.from_settings(Settings().with_overrides(api_keys_file=str(tmp_path / "none")))


def test_wallet_authorization() -> None:
    admin, alice = Principal("admin"), Principal("customer", "alice")
    assert authorize_wallet(admin, "anyone", admin_only=True) is admin
    assert authorize_wallet(alice, "alice") is alice
    for principal, wallet, admin_only, status in [
        (None, "alice", False, 401),
        (alice, "bob", False, 403),
        (alice, "alice", True, 403),
    ]:
        with pytest.raises(ApiError) as refused:
            authorize_wallet(principal, wallet, admin_only=admin_only)
        assert refused.value.status == status
        assert "bob" not in refused.value.message


# ------------------------------------------------------------------ weak keys


@pytest.mark.parametrize(
    "key",
    [
        "aaaaaaaaaaaaaaaa",  # one character
        "abcdefghijklmnopqrstuvwxyz",  # a run
        "0123456789012345678901234567",  # runs
        "abababababababababababababab",  # two characters
        "zyxwvutsrqponmlkjihgfedcba",  # a run down
        "bob-key-0123456789",  # mostly a run
        "k-0123456789abcdef",
        "changeme-changeme-changeme",  # a repeated word
        "admin-key-admin-key-admin-key",
        "Password1Password1Password1",
        "qwertyuiopasdfgh",  # keyboard walks
    ],
)
def test_weak_keys_are_refused_at_start(key) -> None:
    with pytest.raises(KeyConfigError, match=r"too weak: about \d+ bits"):
        KeyRing.from_settings(Settings().with_overrides(admin_key=key))
    with pytest.raises(KeyConfigError, match="too weak"):
        KeyRing.from_settings(Settings().with_overrides(customer_keys=f"{key}=alice"))


def test_random_keys_pass_and_digests_are_exempt(tmp_path) -> None:
    for _ in range(500):
        KeyRing().add(secrets.token_urlsafe(16), "admin")
        KeyRing().add(secrets.token_hex(16), "admin")
    path = tmp_path / "keys.json"
    weak_digest = hashlib.sha256(b"aaaaaaaaaaaaaaaa").hexdigest()  # its key is not known here
    path.write_text(json.dumps({"keys": [{"key_sha256": weak_digest, "role": "admin"}]}))
    ring = KeyRing.from_settings(Settings().with_overrides(api_keys_file=str(path)))
    assert ring.lookup("aaaaaaaaaaaaaaaa") == Principal("admin")


def test_entropy_estimates() -> None:
    assert estimated_bits("aaaaaaaaaaaaaaaa") == 0
    assert estimated_bits("abcdefghijklmnop") < 10  # the first letter and the length
    assert estimated_bits("Tr0ub4dor&3-x9Qv!Lm2") > MIN_KEY_BITS


LOWER_SYMBOLS = math.log2(26 + 33)  # bits a character costs in a key of lower case and "-"
LOWER_UPPER_DIGITS = math.log2(26 + 26 + 10)
LOWER_DIGITS = math.log2(26 + 10)
UPPER_DIGITS = math.log2(26 + 10)
OTHER_STEP = math.log2(12)  # a step of ±2…±5 code points or a diagonal key


@pytest.mark.parametrize(
    ("key", "bits"),
    [
        # the word, then a back-reference from position 9 (9 places to copy from)
        ("changeme-changeme-changeme", 9 * LOWER_SYMBOLS + math.log2(9)),
        ("admin-key-admin-key-admin-key", 10 * LOWER_SYMBOLS + math.log2(10)),
        # the word (its "as", "sw" and "rd" are neighbouring keys: a from 9 keys next to
        # or on a's, w from 13 next to s, d from 11 next to r in this alphabet), then a
        # back-reference
        (
            "Password1Password1Password1",
            6 * LOWER_UPPER_DIGITS + math.log2(9 * 13 * 11) + math.log2(9),
        ),
        # two walks along keyboard rows: a first key and a length each
        ("qwertyuiopasdfgh", 2 * math.log2(26) + math.log2(10) + math.log2(6)),
        ("!@#$%^&*()qwerty", math.log2(26 + 33) * 2 + math.log2(10) + math.log2(6)),
        # interleaved sequences: a first character each, and the length of the whole
        ("1q2w3e4r5t6y7u8i9o0p", 2 * LOWER_DIGITS + math.log2(20)),  # two rows
        ("1a2b3c4d5e6f7g8h9i0j", 2 * LOWER_DIGITS + math.log2(20)),  # a row and a run
        ("1qaz2wsx3edc4rfv5tgb", 4 * LOWER_DIGITS + math.log2(20)),  # columns: four rows
        ("qazwsxedcrfvtgbyhnujm", 3 * math.log2(26) + math.log2(21)),
        # a walk over neighbouring keys that turns: the first key, then each key one of
        # the 2 to 6 next to the previous one (in lower case and digits)
        ("zaq12wsxcde34rfv", LOWER_DIGITS + math.log2(3 * 2 * 4**7 * 6**6)),
        # constant steps of 2: a first character, the step and the length each
        ("ACEGIKMOQSUWY13579", 2 * (UPPER_DIGITS + OTHER_STEP) + math.log2(13 * 5)),
    ],
)
def test_repeated_words_and_keyboard_walks_count_little(key: str, bits: float) -> None:
    assert estimated_bits(key) == pytest.approx(bits)
    assert estimated_bits(key) < MIN_KEY_BITS


@pytest.mark.parametrize(
    "key",
    [
        "1q2w3e4r5t6y7u8i9o0p",
        "1qaz2wsx3edc4rfv5tgb",
        "qazwsxedcrfvtgbyhnujm",
        "zaq12wsxcde34rfv",
        "1a2b3c4d5e6f7g8h9i0j",
        "ACEGIKMOQSUWY13579",
        "1QAZ2WSX3EDC4RFV5TGB",  # shifted or not, the keys are the same
        "!QAZ@WSX#EDC$RFV%TGB",
        "mju7nhy6bgt5vfr4cde3",  # the columns upwards
        "z1x2c3v4b5n6m7q8w9e0",
        "aceg1357ikmo9753",  # steps of ±2 and interleaved ones
        "adgjmpsvybehknqt",  # steps of 3
    ],
)
def test_keyboard_walks_in_any_direction_and_sequences_with_any_step_are_refused(
    key: str,
) -> None:
    with pytest.raises(KeyConfigError, match="too weak"):
        KeyRing().add(key, "admin")


def test_a_walk_over_neighbouring_keys_counts_a_few_bits_a_key() -> None:
    """However a walk turns, each key after the first is one of the few next to the
    previous one (at most 6 in lower case and digits), not one of 36."""
    # where the keys' centres are on a US keyboard, in key widths
    rows = [("1234567890", 1.0), ("qwertyuiop", 1.5), ("asdfghjkl", 1.75), ("zxcvbnm", 2.25)]
    place = {c: (r, x + i) for r, (keys, x) in enumerate(rows) for i, c in enumerate(keys)}
    rnd = Random(7)
    for _ in range(200):
        walk = [rnd.choice("qwertyuiopasdfghjklzxcvbnm")]
        while len(walk) < 20:
            row, x = place[walk[-1]]
            walk.append(
                rnd.choice(
                    [
                        c
                        for c, (r, y) in place.items()
                        if (r == row and abs(y - x) == 1) or (abs(r - row) == 1 and abs(y - x) < 1)
                    ]
                )
            )
        key = "".join(walk)
        assert estimated_bits(key) <= LOWER_DIGITS + 19 * math.log2(6) < MIN_KEY_BITS, key


def test_random_hex_keys_pass() -> None:
    """``secrets.token_hex(16)`` (over 100,000 of them the least was about 93 bits)."""
    for _ in range(2000):
        assert estimated_bits(secrets.token_hex(16)) >= MIN_KEY_BITS


def test_the_test_keys_are_strong_enough() -> None:
    """The keys the API tests start servers with pass (the nearest to the limit: ten
    characters, then a run of ten digits)."""
    keys = [ADMIN, ALICE, BOB, ADMIN_STRONG, ADMIN_KEY, *CUSTOMER_KEYS.values()]
    keys += ["second-admin-0123456789", "producer-key-0123456789", "k-7fQ2xLp9Rw4ZtB8m"]
    assert min(estimated_bits(key) for key in keys) == pytest.approx(estimated_bits(ALICE))
    assert estimated_bits(ALICE) == pytest.approx(11 * math.log2(69) + math.log2(10))
    assert estimated_bits(ALICE) >= MIN_KEY_BITS


@given(
    unit=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8),
    extra=st.integers(min_value=0, max_value=200),
)
def test_a_repeated_unit_is_refused(unit: str, extra: int) -> None:
    """However many times a unit of up to 8 characters is repeated (to the 16 characters
    a key needs, or beyond), it counts as the unit and a few bits: at most
    8 × log2(195) + log2(8) < 64."""
    key = unit * (math.ceil(MIN_KEY_LENGTH / len(unit)) + extra)
    assert estimated_bits(key) < MIN_KEY_BITS
    if key.isprintable() and key == key.strip():
        with pytest.raises(KeyConfigError, match="too weak"):
            KeyRing().add(key, "admin")


@given(st.randoms(use_true_random=True))
def test_random_urlsafe_keys_pass(rnd: Random) -> None:
    """A key made as ``secrets.token_urlsafe(16)`` makes it (over 100,000 of them the
    least estimate was about 73 bits: a key with repeated characters, by its letter
    frequencies)."""
    key = base64.urlsafe_b64encode(rnd.randbytes(16)).rstrip(b"=").decode()
    assert estimated_bits(key) >= MIN_KEY_BITS


# ----------------------------------------------------- failed authentications


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_limit_are_refused_until_the_window_ends() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    ring = KeyRing(limiter)
    ring.add(ADMIN_STRONG, "admin")
    client = ("10.0.0.1", 5555)
    for _ in range(3):
        with pytest.raises(ApiError) as refused:
            principal_of(ring, "wrong-key-0123456789", client)
        assert refused.value.status == 403
    clock.now += 10
    with pytest.raises(ApiError) as refused:
        # the right key, never used from this address, is not even looked at
        principal_of(ring, ADMIN_STRONG, client)
    assert (refused.value.status, refused.value.code) == (429, "too_many_failures")
    assert refused.value.headers == {"Retry-After": "50"}
    # another address is not concerned, nor is a request without a key
    assert principal_of(ring, ADMIN_STRONG, ("10.0.0.2", 1)) == Principal("admin")
    assert principal_of(ring, None, client) is None
    clock.now += 50  # the window is over
    assert principal_of(ring, ADMIN_STRONG, client) == Principal("admin")
    assert len(limiter) == 0


def test_the_failure_table_is_bounded() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=2, window=60, max_clients=100, clock=clock)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
        clock.now += 0.01
    assert len(limiter) == 100
    limiter.failed("10.9.9.9")
    limiter.failed("10.9.9.9")
    assert limiter.retry_after("10.9.9.9") is not None
    assert limiter.retry_after("10.0.0.0") is None  # the oldest were forgotten first
    clock.now += 61
    limiter.failed("10.9.9.8")  # expired entries are dropped as failures come
    assert len(limiter) == 1


ALICE_STRONG = "alice-Vb7mQ2xTz9Kp4Ld"


def _refused_with(status: int, ring: KeyRing, key: str, client: tuple[str, int]) -> None:
    with pytest.raises(ApiError) as refused:
        principal_of(ring, key, client)
    assert refused.value.status == status


def _guess(ring: KeyRing, client: tuple[str, int], times: int) -> None:
    for guess in range(times):
        with pytest.raises(ApiError) as refused:
            principal_of(ring, f"guess-{guess}-Xq7vN2pLk9", client)
        assert refused.value.status in (403, 429)


def test_keys_that_worked_from_an_address_pass_while_guesses_lock_it_out() -> None:
    """A guesser behind the admin's address (NAT, a proxy) does not shut the admin out:
    a key that authenticated from the address recently still passes. A correct key
    never used from there is refused like the guesses (the price of telling a guesser
    nothing), and so is a key whose last success is older than ``trusted_for``."""
    clock = Clock()
    limiter = FailureLimiter(limit=20, window=60, clock=clock, trusted_for=3600)
    ring = KeyRing(limiter)
    ring.add(ADMIN_STRONG, "admin")
    ring.add(ALICE_STRONG, "customer", "alice")
    client = ("192.0.2.7", 40000)
    assert principal_of(ring, ADMIN_STRONG, client) == Principal("admin")
    for guess in range(20):
        _refused_with(403, ring, f"guess-{guess}-Xq7vN2pLk9", client)
    for guess in range(20, 30):  # over the limit: refused without being looked up
        _refused_with(429, ring, f"guess-{guess}-Xq7vN2pLk9", client)
    clock.now += 30
    assert principal_of(ring, ADMIN_STRONG, ("192.0.2.7", 40001)) == Principal("admin")
    # a correct key that never worked from this address: 429 until the window ends
    _refused_with(429, ring, ALICE_STRONG, client)
    assert principal_of(ring, ALICE_STRONG, ("192.0.2.8", 1)) == Principal("customer", "alice")
    _refused_with(429, ring, ALICE_STRONG, client)  # a success elsewhere does not count here
    # each success renews the trust: the admin keeps working through a long attack
    for _ in range(100):
        clock.now += 59
        _guess(ring, client, 21)
        assert principal_of(ring, ADMIN_STRONG, client) == Principal("admin")
    # a key unused from there for longer than trusted_for is a stranger again
    clock.now += 3601
    _guess(ring, client, 21)
    _refused_with(429, ring, ADMIN_STRONG, client)


def test_the_trusted_pairs_are_bounded_and_expire() -> None:
    clock = Clock()
    limiter = FailureLimiter(
        limit=1, window=60, clock=clock, trusted_for=3600, max_trusted=100, max_trusted_per_key=1000
    )
    key = digest(ADMIN_STRONG)
    for i in range(1000):
        limiter.succeeded(f"10.0.{i // 256}.{i % 256}", key)
        clock.now += 0.01
    assert limiter.trusted_pairs == 100
    oldest, newest = "10.0.0.0", "10.0.3.231"  # the 1st and the 1000th
    for address in (oldest, newest):
        limiter.failed(address)
    assert limiter.refusal(oldest, key) is not None  # forgotten: the least recent first
    assert limiter.refusal(newest, key) is None
    assert limiter.refusal(newest, digest(ALICE_STRONG)) is not None  # per key
    limiter.succeeded(newest, key)  # a renewed pair is not duplicated
    assert limiter.trusted_pairs == 100
    clock.now += 3601
    assert limiter.refusal(newest, key) is None  # the failure window is over
    limiter.failed(newest)
    assert limiter.refusal(newest, key) is not None  # the trust has expired
    limiter.succeeded("10.9.9.9", key)  # expired pairs are dropped as successes come
    assert limiter.trusted_pairs == 1


def test_one_key_from_many_addresses_does_not_push_out_the_others() -> None:
    """One valid key used from ever new addresses (a block of IPv6 addresses) keeps only
    its ``max_trusted_per_key`` most recent ones: alice's pair stays, and her locked
    address still lets her through. The cap over all keys still holds."""
    clock = Clock()
    limiter = FailureLimiter(limit=1, window=60, clock=clock, max_trusted=20, max_trusted_per_key=4)
    nat, alice, mallory = "203.0.113.7", digest(ALICE_STRONG), digest(ADMIN_STRONG)
    limiter.succeeded(nat, alice)
    limiter.failed(nat)
    limiter.failed(nat)
    assert limiter.refusal(nat, digest("guess-Xq7vN2pLk9Zr4T")) is not None  # locked
    for i in range(1000):
        clock.now += 0.01
        limiter.succeeded(f"2001:db8::{i:x}", mallory)
        if i == 996:
            limiter.succeeded("2001:db8::0", mallory)  # renewed: among the 4 most recent
    assert limiter.refusal(nat, alice) is None  # alice's pair was not pushed out
    assert limiter.trusted_pairs == 1 + 4
    for address, kept in [("2001:db8::0", True), ("2001:db8::3e4", False)]:
        limiter.failed(address)
        limiter.failed(address)
        assert (limiter.refusal(address, mallory) is None) == kept, address
    # many keys: the cap over all of them forgets the least recent pairs, alice's first
    for k in range(10):
        for i in range(4):
            clock.now += 0.01
            limiter.succeeded(f"198.51.100.{i}", digest(f"key-{k}-Xq7vN2pLk9Zr4T"))
    assert limiter.trusted_pairs == 20
    assert limiter.refusal(nat, alice) is not None


def test_refused_keys_are_counted_by_reason() -> None:
    """Unknown keys (403) and keys from a locked address (429) are counted, also those
    without an address; keys that pass, trusted ones included, are not."""
    clock = Clock()
    limiter = FailureLimiter(limit=2, window=60, clock=clock)
    ring = KeyRing(limiter)
    ring.add(ADMIN_STRONG, "admin")
    ring.add(ALICE_STRONG, "customer", "alice")
    metrics = Metrics()
    metrics.watch_auth(limiter)
    client = ("192.0.2.7", 40000)
    assert principal_of(ring, ADMIN_STRONG, client) == Principal("admin")
    _guess(ring, client, 5)  # 2 unknown, then 3 refused unlooked
    _refused_with(429, ring, ALICE_STRONG, client)  # right, but never used from there
    assert principal_of(ring, ADMIN_STRONG, client) == Principal("admin")  # trusted
    _refused_with(403, ring, "guess-Xq7vN2pLk9Zr4T", None)  # no address: not limited
    assert limiter.refused == {"unknown_key": 3, "locked": 4}
    sample = metrics.registry.get_sample_value
    assert sample("oddstream_auth_refused_total", {"reason": "unknown_key"}) == 3
    assert sample("oddstream_auth_refused_total", {"reason": "locked"}) == 4
