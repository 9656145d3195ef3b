from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pytest
from emu_helpers import KEY, instrumental_body, suno_upload, upload

from aiomusic.emulator import Emulator, EmulatorConfig, Faults, Limits, Timings

GEN = "/v2/generate/audio/minimax/generate"
Factory = Callable[[EmulatorConfig], Emulator]


def _gen_payload(client: httpx.Client) -> dict[str, object]:
    ids = upload(client, "instrumental")
    return {"model": "music-01", "lyrics": "x", "refer_instrumental": ids["instrumental_id"]}


@pytest.mark.parametrize("fault", ["reset_before_answer", "reset_mid_body", "truncated_body"])
def test_lost_answers_still_count_the_paid_submission(
    client: httpx.Client, emulator: Emulator, fault: str
) -> None:
    payload = _gen_payload(client)
    emulator.inject(fault, operation="aiml.generate")
    with pytest.raises(httpx.TransportError):
        client.post(GEN, json=payload)
    assert emulator.counters.paid(key=KEY, operation="aiml.generate") == 1
    assert emulator.counters.fired(fault, operation="aiml.generate") == 1
    # the next request is served normally
    assert client.post(GEN, json=payload).json()["data"]["status"] == 2


def test_slow_drip_delivers_the_whole_body(client: httpx.Client, emulator: Emulator) -> None:
    payload = _gen_payload(client)
    emulator.inject("slow_drip")
    body = client.post(GEN, json=payload).json()
    assert len(bytes.fromhex(body["data"]["audio"])) == body["extra_info"]["music_size"]


@pytest.mark.parametrize("op", ["aiml.generate", "minimax.generate"])
def test_malformed_json(client: httpx.Client, emulator: Emulator, op: str) -> None:
    payload = _gen_payload(client)
    emulator.inject("malformed_json", operation=op)
    path = GEN if op == "aiml.generate" else "/v1/music_generation"
    resp = client.post(path, json=payload)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        resp.json()


@pytest.mark.parametrize("fault", ["invalid_hex", "odd_length_hex"])
def test_bad_hex(client: httpx.Client, emulator: Emulator, fault: str) -> None:
    payload = _gen_payload(client)
    emulator.inject(fault)
    audio = client.post(GEN, json=payload).json()["data"]["audio"]
    with pytest.raises(ValueError, match="non-hexadecimal"):
        bytes.fromhex(audio)
    assert (len(audio) % 2 == 1) == (fault == "odd_length_hex")


def test_malformed_json_on_small_answers(client: httpx.Client, emulator: Emulator) -> None:
    emulator.inject("malformed_json", operation="suno.credit")
    with pytest.raises(json.JSONDecodeError):
        client.get("/api/v1/generate/credit").json()


@pytest.mark.parametrize(
    ("fault", "aiml", "native", "suno"),
    [
        ("rate_limit", 429, 1002, 430),
        ("maintenance", 500, 1000, 455),
        ("server_error", 503, 1024, 500),
    ],
)
def test_rejection_faults_in_each_services_shape(
    client: httpx.Client, emulator: Emulator, fault: str, aiml: int, native: int, suno: int
) -> None:
    payload = _gen_payload(client)
    emulator.inject(fault, operation="aiml.generate")
    emulator.inject(fault, operation="minimax.generate")
    emulator.inject(fault, operation="suno")
    resp = client.post(GEN, json=payload)
    assert resp.status_code == aiml
    assert resp.json()["statusCode"] == aiml
    resp = client.post("/v1/music_generation", json=payload)
    assert resp.status_code == 200
    assert resp.json()["base_resp"]["status_code"] == native
    assert client.get("/api/v1/generate/credit").json()["code"] == suno
    assert emulator.counters.paid() == 0
    assert emulator.counters.fired(fault) == 3


def test_auth(emulator_factory: Factory) -> None:
    emu = emulator_factory(EmulatorConfig(api_keys=["good"], timings=Timings.instant()))
    for headers in ({}, {"Authorization": "Bearer bad"}, {"Authorization": "Basic good"}):
        with httpx.Client(base_url=emu.url, headers=headers) as c:
            resp = c.post(GEN, json={})
            assert resp.status_code == 401
            assert resp.json()["statusCode"] == 401
            resp = c.post("/v1/music_generation", json={})
            assert resp.json()["base_resp"]["status_code"] == 1004
            assert c.get("/api/v1/generate/credit").json()["code"] == 401
            assert c.post("/api/file-base64-upload", json={}).json()["code"] == 401
    with httpx.Client(base_url=emu.url, headers={"Authorization": "Bearer good"}) as c:
        assert c.get("/api/v1/generate/credit").json()["code"] == 200


def test_any_key_accepted_by_default(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url, headers={"Authorization": "Bearer x"}) as c:
        assert c.get("/api/v1/generate/credit").json()["code"] == 200


def test_rate_windows(emulator: Emulator) -> None:
    emulator.set_limits(Limits(minimax_requests=2, suno_requests=3, retry_after=5))
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        codes = [c.get("/api/v1/generate/credit").json()["code"] for _ in range(4)]
        assert codes == [200, 200, 200, 430]
        statuses = [c.post(GEN, json={}).status_code for _ in range(3)]
        assert statuses[:2] == [400, 400]
        assert statuses[2] == 429
        resp = c.post(GEN, json={})
        assert resp.headers["retry-after"].isdigit()
        assert c.post("/v1/music_generation", json={}).json()["base_resp"]["status_code"] == 1002
    # another key has its own window
    with httpx.Client(base_url=emulator.url, headers={"Authorization": "Bearer other"}) as c:
        assert c.get("/api/v1/generate/credit").json()["code"] == 200
    assert emulator.counters.rejected[("suno.credit", "rate_limit")] == 1


def test_suno_405_option(emulator: Emulator) -> None:
    emulator.set_limits(Limits(suno_requests=1, suno_code=405))
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        codes = [c.get("/api/v1/generate/credit").json()["code"] for _ in range(2)]
    assert codes == [200, 405]


def test_concurrency_limit(emulator_factory: Factory) -> None:
    emu = emulator_factory(
        EmulatorConfig(timings=Timings(generate=1.0), limits=Limits(minimax_concurrent=2))
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
        payload = _gen_payload(c)
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
            barrier.wait()
            statuses.append(c.post(GEN, json=payload).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(429) >= 1
    assert statuses.count(200) >= 1
    assert emu.counters.max_concurrent[KEY] <= 3  # the rejected one counts while it checks
    assert emu.counters.paid() == statuses.count(200)


def test_limits_off(emulator: Emulator) -> None:
    emulator.set_limits(Limits.off())
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert all(c.get("/api/v1/generate/credit").json()["code"] == 200 for _ in range(30))


def _outcomes(emu: Emulator, n: int) -> list[int]:
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        return [c.get("/api/v1/generate/credit").json()["code"] for _ in range(n)]


def test_random_faults_repeat_with_the_same_seed(emulator: Emulator) -> None:
    emulator.set_limits(Limits.off())
    emulator.set_faults(Faults(rates={"server_error@suno": 0.3, "maintenance": 0.2}, seed=42))
    first = _outcomes(emulator, 30)
    emulator.set_faults(Faults(rates={"server_error@suno": 0.3, "maintenance": 0.2}, seed=42))
    assert _outcomes(emulator, 30) == first
    assert {500, 455, 200} <= set(first)


def test_fault_targets_only_its_operation(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults(Faults(rates={"server_error@aiml.generate": 1.0}))
    assert client.get("/api/v1/generate/credit").json()["code"] == 200
    assert client.post(GEN, json={}).status_code == 503


def test_download_faults(client: httpx.Client, emulator: Emulator) -> None:
    url = suno_upload(client)
    emulator.inject("reset_mid_body", operation="files.download")
    with pytest.raises(httpx.TransportError):
        httpx.get(url)
    assert len(httpx.get(url).content) > 0


def test_submit_answer_lost_counts_once(client: httpx.Client, emulator: Emulator) -> None:
    body = instrumental_body(suno_upload(client))
    emulator.inject("reset_before_answer", operation="suno.add_instrumental")
    with pytest.raises(httpx.TransportError):
        client.post("/api/v1/generate/add-instrumental", json=body)
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1


@pytest.mark.parametrize(
    "rates",
    [{"nope": 0.1}, {"server_error": 1.5}, {"server_error@nowhere": 0.1}],
)
def test_fault_config_validation(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Faults(rates=rates)


def test_faults_parse_and_inject_validation(emulator: Emulator) -> None:
    assert Faults.parse(["server_error=0.5", "slow_drip@files=1"], seed=3).rates == {
        "server_error": 0.5,
        "slow_drip@files": 1.0,
    }
    with pytest.raises(ValueError):
        Faults.parse(["server_error"])
    with pytest.raises(ValueError):
        emulator.inject("nope")
    with pytest.raises(ValueError):
        emulator.inject("server_error", operation="nowhere")
    with pytest.raises(ValueError):
        emulator.inject("server_error", count=0)


def test_admin_endpoints(client: httpx.Client) -> None:
    resp = client.post("/_emulator/inject", json={"fault": "maintenance", "operation": "suno"})
    assert resp.json() == {"ok": True}
    assert client.get("/api/v1/generate/credit").json()["code"] == 455
    counters = client.get("/_emulator/counters").json()
    assert counters["faults"] == [{"fault": "maintenance", "operation": "suno.credit", "count": 1}]
    assert client.post("/_emulator/inject", json={"fault": "x"}).status_code == 400
    assert client.post("/_emulator/reset").json() == {"ok": True}
    assert client.get("/_emulator/counters").json()["faults"] == []
    assert client.get("/_emulator/nope").status_code == 404
    assert client.get("/api/nope").json()["code"] == 404
    assert client.get("/v2/nope").status_code == 404


def test_each_service_names_the_limit_it_refuses_for(emulator_factory: Factory) -> None:
    # one generation at once and two requests per window: the concurrency is checked first,
    # and a refused request counts in neither limit
    emu = emulator_factory(EmulatorConfig(
        timings=Timings(generate=1.0),
        limits=Limits(minimax_concurrent=1, minimax_requests=2, minimax_window=60.0,
                      retry_after=2, rate_headers=True)))
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
        payload = _gen_payload(c)  # the upload takes one of the two requests
    answers: dict[str, httpx.Response] = {}

    def call(name: str, path: str, delay: float) -> None:
        import time

        time.sleep(delay)
        with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
            answers[name] = c.post(path, json=payload)

    threads = [threading.Thread(target=call, args=("first", GEN, 0.0)),
               threading.Thread(target=call, args=("aiml", GEN, 0.3)),
               threading.Thread(target=call, args=("native", "/v1/music_generation", 0.4))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers["first"].status_code == 200
    aiml = answers["aiml"]
    assert aiml.status_code == 429
    assert aiml.headers["retry-after"] == "2"  # the configured guess: nobody knows when
    assert aiml.headers["x-ratelimit-remaining-requests"] == "0"  # upload + first
    assert aiml.headers["x-ratelimit-limit-requests"] == "2"
    assert answers["native"].json()["base_resp"]["status_code"] == 1041
    assert emu.counters.rejected[("aiml.generate", "concurrency")] == 1
    assert emu.counters.rejected[("minimax.generate", "concurrency")] == 1
    # the window is full now: a rate refusal, with the wait until it has room (rounded up)
    with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
        refused = c.post(GEN, json=payload)
        native = c.post("/v1/music_generation", json=payload)
    assert refused.status_code == 429
    assert 57 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert float(refused.headers["x-ratelimit-reset-requests"].rstrip("s")) > 55
    assert native.json()["base_resp"]["status_code"] == 1002


def test_a_refused_generation_frees_its_place(emulator_factory: Factory) -> None:
    emu = emulator_factory(EmulatorConfig(limits=Limits(minimax_concurrent=1)))
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as c:
        payload = _gen_payload(c)
        emu.inject("server_error", operation="aiml.generate")
        assert c.post(GEN, json=payload).status_code == 503  # refused after taking the place
        assert c.post(GEN, json={}).status_code == 400  # invalid after taking the place
        assert c.post(GEN, json=payload).status_code == 200  # both gave it back


def test_the_rate_window_slides(emulator: Emulator) -> None:
    import time

    emulator.set_limits(Limits(minimax_requests=1, minimax_window=0.3))
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.post(GEN, json={}).status_code == 400  # admitted (then found invalid)
        assert c.post(GEN, json={}).status_code == 429
        time.sleep(0.35)
        assert c.post(GEN, json={}).status_code == 400  # the first start left the window
