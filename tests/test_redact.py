"""maru.redact: each credential format is masked, look-alikes that are not secrets are kept, and a
secret across a length cut is masked before the cut."""

from __future__ import annotations

import pytest

from maru.redact import MASK, Redactor, redact_text, redact_then_cut

# Fake values in real shapes (never real credentials).
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"aws_secret_access_key={AWS_SECRET}", "aws_secret_access_key=***"),
        (f"AWS_SECRET_ACCESS_KEY: {AWS_SECRET}", "AWS_SECRET_ACCESS_KEY: ***"),
        (f'{{"aws_secret_access_key": "{AWS_SECRET}"}}', '{"aws_secret_access_key": "***"}'),
        ("postgresql://svc:Pa55w0rdXyz@db:5432/app", "postgresql://svc:***@db:5432/app"),
        ("redis://:hunter22@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 works", "hf_*** works"),
        ("github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", "github_pat_***"),
        (f"the cookie held {JWT}.", "the cookie held eyJ***."),
        ("sk_live_51HxYzAbCdEfGhIjKlMnOpQr", "sk_live_***"),
        ("rk_test_51HxYzAbCdEfGhIjKlMnOpQr", "rk_test_***"),
        ("GET /export?token=9f8e7d6c5b4a39281706f5e4d3c2b1a0&page=2", "GET /export?token=***&page=2"),
        ("HF_TOKEN=abcdefgh12345678", "HF_TOKEN=***"),
        ("glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-***"),
        ("npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_***"),
        ("ya29.a0AfH6SMBxAbCdEfGhIjKlMnOp", "ya29.***"),
        ("ASIAABCDEFGHIJKLMNOP", "ASIA***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- ok",
            "-----BEGIN PRIVATE KEY-----*** ok",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEA", "-----BEGIN PRIVATE KEY-----***"),
    ],
)
def test_each_format_is_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=1000 and 42 tokens used",
        "the task-management board",
        "https://example.com/path?page=2",
        "eyJ alone is not a token",
        "input_tokens: 120",
        "answer this basic question",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert redact_text(text) == text


def test_redacting_is_idempotent() -> None:
    once = redact_text(f"key sk-proj-{'a1' * 20} and aws_secret_access_key={AWS_SECRET}")
    assert redact_text(once) == once


def test_a_key_across_the_cut_is_masked_before_the_cut() -> None:
    key = "github_pat_" + "Zq9" * 27  # masked from 20 characters on: the cut leaves 15
    text = "word " * 3994 + "wor " + key + " tail"
    assert 20_000 - text.index(key) == 26  # "github_pat_" and 15 of its characters before the cut
    cut = redact_then_cut(text, 20_000)
    assert "Zq9" not in cut and "github_pat_***" in cut
    assert cut.endswith(f"… [{len(text)} chars]")


def test_masks_that_shrink_the_margin_do_not_pull_the_rest_into_view() -> None:
    keys = " ".join("sk-" + "A" * 300 for _ in range(3))
    text = "x" * 19_000 + " " + keys + " hf_" + "B" * 40
    assert "B" * 8 not in redact_then_cut(text, 20_000)


def test_dict_keys_that_name_secrets_hide_their_values_but_counts_stay() -> None:
    redact = Redactor()
    value = {"token": "abc", "hf_token": "abc", "input_tokens": 12, "nested": [{"password": "x1"}],
             "sk-proj-AbCdEfGhIjKl": "the key was the key"}
    assert redact(value) == {"token": MASK, "hf_token": MASK, "input_tokens": 12, "nested": [{"password": MASK}],
                             "sk-***": "the key was the key"}
