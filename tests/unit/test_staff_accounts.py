"""Staff passwords (scrypt), who sees which site, new-user checks and the login throttle."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.login_throttle import LoginThrottle
from gateway.store.staff import (
    StaffUser,
    UserInputError,
    check_new_user,
    hash_password,
    verify_password,
)

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_hash_verifies_its_password_and_no_other() -> None:
    """Round trip; a wrong, empty or almost-right password fails; two hashes of one password
    differ (random salt)."""
    stored = hash_password("correct horse battery staple")
    assert verify_password("correct horse battery staple", stored)
    for wrong in ("correct horse battery stapl", "", "Correct horse battery staple"):
        assert not verify_password(wrong, stored)
    assert hash_password("correct horse battery staple") != stored
    assert verify_password("pässwörd 密码 🔑", hash_password("pässwörd 密码 🔑"))


def test_the_stored_form_names_its_parameters() -> None:
    """`scrypt$16384$8$1$salt$key`: a 16-byte salt, a 32-byte key, nothing of the password."""
    stored = hash_password("correct horse battery staple")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
    assert "horse" not in stored


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "scrypt$16384$8$1$$", "bcrypt$16384$8$1$AAAA$AAAA", "scrypt$1073741824$8$1$AA$A"],
)
def test_a_damaged_stored_hash_never_matches_and_never_raises(stored: str) -> None:
    assert not verify_password("anything at all", stored)


def test_unknown_users_cost_the_same_work() -> None:
    """A damaged or missing hash still runs scrypt (no telling accounts apart by time)."""
    stored = hash_password("correct horse battery staple")
    start = time.perf_counter()
    verify_password("x", stored)
    real = time.perf_counter() - start
    start = time.perf_counter()
    verify_password("x", "")
    dummy = time.perf_counter() - start
    assert dummy > real / 4


def test_who_sees_which_site() -> None:
    """An admin with no sites sees all; with sites, only those; marketers and agents only
    their own."""
    assert StaffUser("1", "a@x.io", "", "admin", frozenset()).can_see("any")
    assert not StaffUser("1", "a@x.io", "", "admin", frozenset({"demo"})).can_see("shop")
    marketer = StaffUser("2", "m@x.io", "", "marketer", frozenset({"demo"}))
    assert marketer.can_see("demo") and not marketer.can_see("shop")
    assert not StaffUser("3", "g@x.io", "", "agent", frozenset()).can_see("demo")


def test_new_user_fields_are_checked_and_tidied() -> None:
    email, name, sites = check_new_user(
        " Ann@Example.COM ", " Ann ", "marketer", ["demo"], "x" * 12, ["demo", "shop"]
    )
    assert (email, name, sites) == ("ann@example.com", "Ann", frozenset({"demo"}))
    bad = [
        ("ann", "", "admin", [], "x" * 12),
        ("a b@example.com", "", "admin", [], "x" * 12),
        ("<a>@example.com", "", "admin", [], "x" * 12),
        ("ann@example.com", "x" * 101, "admin", [], "x" * 12),
        ("ann@example.com", "", "owner", [], "x" * 12),
        ("ann@example.com", "", "agent", [], "x" * 12),
        ("ann@example.com", "", "admin", ["nowhere"], "x" * 12),
        ("ann@example.com", "", "admin", [], "x" * 11),
    ]
    for fields in bad:
        with pytest.raises(UserInputError):
            check_new_user(*fields, known=["demo"])


def test_the_throttle_counts_failures_per_email_and_per_client() -> None:
    throttle = LoginThrottle()
    for i in range(4):
        throttle.failed("ann@x.io", "10.0.0.1", T0 + timedelta(minutes=i))
    assert throttle.retry_after("ann@x.io", "10.0.0.1", T0 + timedelta(minutes=4)) == 0
    throttle.failed("ann@x.io", "10.0.0.1", T0 + timedelta(minutes=4))
    # The first failure leaves the window at minute 15: 11 minutes from minute 4.
    assert throttle.retry_after("ann@x.io", "10.0.0.9", T0 + timedelta(minutes=4)) == 660
    assert throttle.retry_after("bob@x.io", "10.0.0.1", T0 + timedelta(minutes=4)) == 0
    assert throttle.retry_after("ann@x.io", "10.0.0.9", T0 + timedelta(minutes=15)) == 0
    for i in range(20):
        throttle.failed(f"u{i}@x.io", "10.0.0.2", T0)
    assert throttle.retry_after("new@x.io", "10.0.0.2", T0) == 900
    throttle.succeeded("ann@x.io", "10.0.0.2", T0)
    assert throttle.retry_after("ann@x.io", "10.0.0.3", T0 + timedelta(minutes=5)) == 0
    assert throttle.retry_after("new@x.io", "10.0.0.2", T0) == 0  # 19 left


def test_the_throttle_forgets_the_oldest_beyond_its_bound() -> None:
    """A flood of made-up e-mails cannot grow the throttle without bound."""
    throttle = LoginThrottle(max_tracked=100)
    for i in range(1000):
        throttle.failed(f"u{i}@x.io", f"10.0.{i // 250}.{i % 250}", T0)
    assert len(throttle._failures) <= 100
