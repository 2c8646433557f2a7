"""End to end: the demo's data, loaded by the CLI, served by a real server process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.services import free_port

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "marketpilot.cli"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPILOT_")}
    # The served slate's strategy is under test, not its speed: no latency-budget fallback
    # when the machine is loaded.
    env.update(MARKETPILOT_HOME=str(home), MARKETPILOT_RECOMMEND_BUDGET_MS="60000", COLUMNS="250", NO_COLOR="1")
    return env


def test_demo_loads_a_marketplace_and_the_served_api_answers(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    prepared = subprocess.run(
        [*CLI, "demo", "--no-serve", "--listings", "300", "--users", "120", "--days", "3"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    operator = re.search(r"operator key \(shown once\): (\S+)", prepared.stderr)
    merchant = re.search(r"merchant key for seller (\S+): (\S+)", prepared.stderr)
    assert operator and merchant, prepared.stderr[-3000:]
    seller = merchant.group(1)
    # the demo trains its models; a marketplace this small has too few payments for fraud
    assert "'recommend': 'champion v1'" in prepared.stderr and "'click': 'champion v1'" in prepared.stderr
    assert "'fraud': 'skipped: not enough data" in prepared.stderr

    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            assert server.poll() is None, server.stdout.read().decode()[-3000:] if server.stdout else ""
            time.sleep(0.2)

        op = {"Authorization": f"Bearer {operator.group(1)}"}
        mine = {"Authorization": f"Bearer {merchant.group(2)}"}
        listings = httpx.get(f"{base}/v1/listings", params={"limit": 50}, headers=op).json()["items"]
        assert len(listings) == 50
        own = httpx.get(f"{base}/v1/listings", params={"limit": 500}, headers=mine).json()["items"]
        assert own and {x["seller_id"] for x in own} == {seller}
        other = next(x for x in listings if x["seller_id"] != seller)
        assert httpx.get(f"{base}/v1/listings/{other['id']}", headers=mine).status_code == 404
        assert httpx.get(f"{base}/v1/listings/{other['id']}", headers=op).status_code == 200
        assert httpx.get(f"{base}/v1/listings").status_code == 401
        assert "marketpilot_" in httpx.get(f"{base}/metrics", headers=op).text
        buyer = httpx.get(f"{base}/v1/users", params={"limit": 1}, headers=op).json()["items"][0]["id"]
        slate = httpx.post(f"{base}/v1/recommendations", json={"user_id": buyer, "k": 5}, headers=op).json()
        assert slate["strategy"] == "model" and len(slate["items"]) == 5, slate
    finally:
        server.terminate()
        server.wait(20)
