"""API keys from configuration: env pairs, a JSON file with keys or their digests, and
clear refusals for unusable configurations."""

from __future__ import annotations

import hashlib
import json

import pytest

from oddstream.api.auth import KeyConfigError, KeyRing, Principal, authorize_wallet
from oddstream.api.errors import ApiError
from oddstream.config import Settings

ADMIN = "admin-key-0123456789"
ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789xx"


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
        ('{"keys": [{"key": "k-0123456789abcdef", "role": "root"}]}', "unknown role"),
        ('{"keys": [{"key_sha256": "abc", "role": "admin"}]}', "64 lowercase hex"),
        (
            '{"keys": [{"key": "k-0123456789abcdef", "role": "admin", "wallet": "w"}]}',
            "names no wallet",
        ),
        ('{"keys": [{"key": "k-0123456789abcdef", "role": "customer"}]}', "needs a wallet"),
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
