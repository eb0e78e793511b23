"""The bot's configuration at the edge: the ops token, and secrets on every error path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bot_support import KEY_NAME, new_key_pem
from pydantic import ValidationError

from cryptopipeline.bot._credentials import CdpCredentials
from cryptopipeline.bot._settings import BotOpsSettings, BotSettings, BrokerSettings

PRIVATE, _ = new_key_pem()
BODY_LINES = [line for line in PRIVATE.splitlines() if line and "PRIVATE KEY" not in line]


def leaks(text: str) -> list[str]:
    """What of the key material shows in `text` (nothing, when all is well)."""
    found = [line for line in BODY_LINES if line[:16] in text]
    if "PRIVATE KEY" in text:
        found.append("PRIVATE KEY")
    if KEY_NAME in text:
        found.append(KEY_NAME)
    return found


@pytest.mark.parametrize("token", ["", "   ", "\t"])
def test_an_empty_kill_token_means_disabled(token: str) -> None:
    assert BotOpsSettings(kill_token=token).kill_token is None  # type: ignore[arg-type]


def test_a_real_kill_token_is_kept_and_hidden() -> None:
    ops = BotOpsSettings(kill_token="s3cret-token")  # type: ignore[arg-type]
    assert ops.kill_token is not None and ops.kill_token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(ops) and "s3cret-token" not in str(ops)


def test_a_bad_key_in_settings_never_echoes_it() -> None:
    """pydantic's error text repeats the input of a group: the broker group holds the key."""
    with pytest.raises(ValidationError) as caught:
        BotSettings(broker={"mode": "coinbase", "key_name": KEY_NAME,  # type: ignore[arg-type]
                            "private_key": PRIVATE[:-40]})  # fmt: skip
    assert "not a readable PEM" in str(caught.value)
    assert leaks(str(caught.value)) == [] and leaks(repr(caught.value)) == []


def test_settings_and_credentials_reprs_hide_the_key() -> None:
    broker = BrokerSettings(mode="coinbase", key_name=KEY_NAME, private_key=PRIVATE)  # type: ignore[arg-type]
    creds = broker.credentials()
    assert isinstance(creds, CdpCredentials)
    for text in (repr(broker), str(broker), repr(creds), str(broker.model_dump())):
        assert leaks(text) == [], text


def _run_bot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPIPELINE_")}
    return subprocess.run(
        [sys.executable, "-m", "cryptopipeline.bot.cli"],
        env=clean | env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_config_error_prints_no_key_material() -> None:
    """The model-level check (mode coinbase, a key that does not parse) used to print
    `got {'private_key': '-----BEGIN EC PRIVATE KEY-----\\nMHcC...`."""
    done = _run_bot({
        "CRYPTOPIPELINE_BROKER__MODE": "coinbase",
        "CRYPTOPIPELINE_BROKER__KEY_NAME": KEY_NAME,
        "CRYPTOPIPELINE_BROKER__PRIVATE_KEY": PRIVATE.replace("A", "B", 3)[:-30],
        "CRYPTOPIPELINE_OPS__KILL_TOKEN": "",
    })  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "CRYPTOPIPELINE_BROKER: Value error, the private key is not a readable PEM" in output
    assert leaks(output) == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot be read"),
        (b"{not json", "is not JSON"),
        (b'["a list"]', '"name" and "privateKey"'),
        (json.dumps({"name": KEY_NAME, "privateKey": 7}).encode(), '"name" and "privateKey"'),
        (json.dumps({"name": KEY_NAME, "privateKey": PRIVATE[:-50]}).encode(), "readable PEM"),
        (json.dumps({"name": "", "privateKey": PRIVATE}).encode(), "key name is empty"),
    ],
)
def test_a_malformed_key_file_is_one_line_not_a_traceback(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    key_file = tmp_path / "key.json"
    if content is not None:
        key_file.write_bytes(content)
    done = _run_bot({
        "CRYPTOPIPELINE_BROKER__MODE": "coinbase",
        "CRYPTOPIPELINE_BROKER__KEY_FILE": str(key_file),
    })  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert lines[0] == "cryptopipeline-bot: invalid configuration:"
    assert len(lines) == 2 and says in lines[1], output
    assert leaks(output) == []
