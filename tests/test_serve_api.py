"""`seq2seq serve`'s REST API in process (FastAPI's TestClient / httpx on the ASGI app) on tiny exports.

Every answer is compared with the SavedModel's own signature called on that input alone. The exports are the
session fixtures `translation_export` and `captioning_export` of tests/conftest.py (the captioning one skips
without the Flickr8k subset).
"""

import asyncio
import base64
import glob
import json
import os

import httpx
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from seq2seq.server.app import ServerSettings, create_app
from seq2seq.server.request_body import Limits
from seq2seq.server.served_model import ServedModel, parse_model_spec

SENTENCES = ["el gato come pan .", "la niña tiene un libro rojo .", "", "🦜 漢字", "el perro grande ve la casa ."]
FLICKR_IMAGES = "/work/shared/data/flickr8k/images"


def _python(value):
    """A numpy value of a signature output -> what the server's JSON holds (str for tf.string)."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_python(v) for v in value]
    return value


def alone(loaded, signature: str, key: str, value) -> dict:
    """The SavedModel's answer for one input: output name -> JSON-ready value."""
    out = loaded.signatures[signature](**{key: tf.constant([value], tf.string)})
    return {name: _python(tensor.numpy()[0]) for name, tensor in out.items()}


def assert_same(answer: dict, expected: dict):
    """Equal strings exactly and numbers to float32 precision (a batch may round a matmul differently)."""
    assert sorted(answer) == sorted(expected)
    for name, value in expected.items():
        array = np.asarray(value)
        if array.dtype.kind in "fi":
            np.testing.assert_allclose(np.asarray(answer[name]), array, atol=1e-4, err_msg=name)
        else:
            assert answer[name] == value, name


@pytest.fixture(scope="module")
def served(translation_export):
    return {"tiny": ServedModel("tiny", translation_export)}


@pytest.fixture(scope="module")
def loaded(translation_export):
    return tf.saved_model.load(translation_export)


@pytest.fixture(scope="module")
def client(served):
    app = create_app(
        served,
        ServerSettings(
            Limits(max_body_bytes=2**20, max_text_chars=500, max_instances=16), max_batch_size=8, max_wait_ms=2
        ),
    )
    with TestClient(app) as test_client:
        yield test_client


def test_model_spec_names():
    assert parse_model_spec("runs/spa_en/export") == ("export", "runs/spa_en/export")
    assert parse_model_spec("spa_en=runs/spa_en/export/") == ("spa_en", "runs/spa_en/export/")
    with pytest.raises(ValueError, match="must not contain ':'"):
        parse_model_spec("a:b=x")
    with pytest.raises(ValueError, match="NAME=EXPORT_DIR"):
        parse_model_spec("=x")


def test_status_metadata_healthz(client):
    assert client.get("/v1/models/tiny").json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    meta = client.get("/v1/models/tiny/metadata").json()
    assert meta["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    assert meta["task"] == "translation"
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert sorted(defs) == ["score", "serving_default", "translate_nbest", "translate_with_attention"]
    assert defs["serving_default"]["inputs"] == {
        "text": {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1", "name": ""}]}, "name": "text"}
    }
    assert {k: v["dtype"] for k, v in defs["serving_default"]["outputs"].items()} == {
        "translation": "DT_STRING",
        "score": "DT_FLOAT",
    }
    assert [d["size"] for d in defs["translate_nbest"]["outputs"]["translations"]["tensor_shape"]["dim"]] == ["-1", "2"]
    assert client.get("/healthz").json() == {"status": "ok", "models": ["tiny"], "batching": True}
    assert client.get("/api/models").json() == {
        "models": [
            {
                "name": "tiny",
                "task": "translation",
                "signatures": ["score", "serving_default", "translate_nbest", "translate_with_attention"],
            }
        ]
    }


@pytest.mark.parametrize("signature", ["serving_default", "translate_nbest"])
def test_row_and_columnar_predict_equal_the_saved_model(client, loaded, signature):
    rows = client.post("/v1/models/tiny:predict", json={"instances": SENTENCES, "signature_name": signature})
    assert rows.status_code == 200
    predictions = rows.json()["predictions"]
    assert len(predictions) == len(SENTENCES)
    for sentence, answer in zip(SENTENCES, predictions):
        assert_same(answer, alone(loaded, signature, "text", sentence))
    keyed = client.post(
        "/v1/models/tiny:predict", json={"instances": [{"text": s} for s in SENTENCES], "signature_name": signature}
    )
    assert keyed.json() == rows.json()
    columns = client.post("/v1/models/tiny:predict", json={"inputs": {"text": SENTENCES}, "signature_name": signature})
    outputs = columns.json()["outputs"]
    assert outputs == {key: [p[key] for p in predictions] for key in predictions[0]}
    assert (
        client.post("/v1/models/tiny:predict", json={"inputs": SENTENCES, "signature_name": signature}).json()
        == columns.json()
    )


def test_attention_signature_per_sentence_equals_the_saved_model(client, loaded, served):
    """Its outputs are padded to the longest row of a call, so it is never batched across requests."""
    assert served["tiny"].batchable("serving_default") and not served["tiny"].batchable("translate_with_attention")
    for sentence in SENTENCES:
        response = client.post(
            "/v1/models/tiny:predict", json={"instances": [sentence], "signature_name": "translate_with_attention"}
        )
        assert_same(response.json()["predictions"][0], alone(loaded, "translate_with_attention", "text", sentence))


def test_nbest_gives_two_hypotheses_best_first(client, loaded):
    out = client.post(
        "/v1/models/tiny:predict", json={"instances": ["el gato come pan ."], "signature_name": "translate_nbest"}
    ).json()["predictions"][0]
    assert len(out["translations"]) == 2 and out["scores"][0] >= out["scores"][1]
    best = client.post("/v1/models/tiny:predict", json={"instances": ["el gato come pan ."]}).json()
    assert out["translations"][0] == best["predictions"][0]["translation"]


BIG = "x" * (2**20 + 1)
BAD_TRANSLATION_REQUESTS = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "must be a JSON object, got list"),
    (b'{"instance": ["a"]}', 400, "unknown field(s) ['instance']"),
    (b"{}", 400, "exactly one of 'instances'"),
    (b'{"instances": "a"}', 400, "instances: expected a list, got str"),
    (b'{"instances": []}', 400, "instances: empty list"),
    (b'{"instances": ["a", 5]}', 400, "instances[1]: expected a string, got int"),
    (b'{"instances": [{"txt": "a"}]}', 400, "instances[0]: fields ['txt']; this model's only input is 'text'"),
    (b'{"inputs": {"text": "a"}}', 400, "inputs.text: expected a list, got str"),
    (
        json.dumps({"instances": ["a" * 100_000]}).encode(),
        400,
        "instances[0]: 100000 characters, more than the limit of 500 (--max-text-chars)",
    ),
    (json.dumps({"instances": ["a"] * 17}).encode(), 400, "17 inputs, more than the limit of 16 per request"),
    (b'{"instances": ["a"], "signature_name": "nope"}', 400, 'signature_name "nope" is not one of'),
    (b'{"instances": ["a"], "signature_name": 3}', 400, "signature_name 3 is not one of"),
    (b"\xff\xfe", 400, "malformed JSON"),
    (json.dumps({"instances": [BIG]}).encode(), 413, "over the limit of 1048576 bytes (--max-body-bytes)"),
]


@pytest.mark.parametrize(
    "body,status,message", BAD_TRANSLATION_REQUESTS, ids=[m for _, _, m in BAD_TRANSLATION_REQUESTS]
)
def test_bad_requests_get_4xx_naming_the_field_or_limit(client, body, status, message):
    response = client.post("/v1/models/tiny:predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_unknown_model_and_route_are_404_json(client):
    for response in (
        client.post("/v1/models/nope:predict", json={"instances": ["a"]}),
        client.get("/v1/models/nope"),
        client.get("/v1/models/nope/metadata"),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "model 'nope' not found; served models: ['tiny']"}
    assert client.get("/v2/anything").json() == {"error": "Not Found"}


def test_metrics_count_requests_by_code(served):
    app = create_app(served, ServerSettings(max_batch_size=8, max_wait_ms=2))
    with TestClient(app) as fresh:
        fresh.post("/v1/models/tiny:predict", json={"instances": ["el gato ."]})
        fresh.post("/v1/models/tiny:predict", json={"instances": []})
        text = fresh.get("/metrics").text
    assert 'seq2seq_requests_total{code="200",model="tiny",signature="serving_default"} 1.0' in text
    assert 'seq2seq_requests_total{code="400",model="tiny",signature=""} 1.0' in text
    assert 'seq2seq_batch_size_count{model="tiny",signature="serving_default"} 1.0' in text
    assert 'seq2seq_request_latency_seconds_count{model="tiny",signature="serving_default"} 1.0' in text


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(served, loaded):
    """16 concurrent one-sentence requests, batches of at most 8 and a long wait: exactly two calls of 8."""
    app = create_app(served, ServerSettings(max_batch_size=8, max_wait_ms=2000))
    sentences = [f"el {w} come pan ." for w in ("gato", "perro", "niño", "niña")] * 4

    async def scenario():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as http:
                answers = await asyncio.gather(
                    *[http.post("/v1/models/tiny:predict", json={"instances": [s]}) for s in sentences]
                )
                return answers, (await http.get("/metrics")).text

    answers, metrics = asyncio.run(scenario())
    for sentence, answer in zip(sentences, answers):
        assert answer.status_code == 200
        assert_same(answer.json()["predictions"][0], alone(loaded, "serving_default", "text", sentence))
    assert 'seq2seq_batch_size_count{model="tiny",signature="serving_default"} 2.0' in metrics
    assert 'seq2seq_batch_size_sum{model="tiny",signature="serving_default"} 16.0' in metrics


# --------------------------------------------------------------------------------------------------
# Captioning


@pytest.fixture(scope="module")
def caption_client(captioning_export):
    app = create_app({"cap": ServedModel("cap", captioning_export)}, ServerSettings(max_wait_ms=2))
    with TestClient(app) as test_client:
        yield test_client


def _flickr_jpegs(n):
    paths = sorted(glob.glob(os.path.join(FLICKR_IMAGES, "*.jpg")))[:n]
    if len(paths) < n:
        pytest.skip(f"Flickr8k images not found in {FLICKR_IMAGES}")
    return [open(p, "rb").read() for p in paths]


@pytest.mark.parametrize("signature", ["serving_default", "caption_with_attention"])
def test_caption_b64_equals_the_saved_model(caption_client, captioning_export, signature):
    images = _flickr_jpegs(3 if signature == "serving_default" else 1)
    loaded = tf.saved_model.load(captioning_export)
    body = {"instances": [{"b64": base64.b64encode(i).decode()} for i in images], "signature_name": signature}
    response = caption_client.post("/v1/models/cap:predict", json=body)
    assert response.status_code == 200
    for image, answer in zip(images, response.json()["predictions"]):
        assert_same(answer, alone(loaded, signature, "image_bytes", image))
    keyed = {"instances": [{"image_bytes": {"b64": base64.b64encode(images[0]).decode()}}], "signature_name": signature}
    assert_same(
        caption_client.post("/v1/models/cap:predict", json=keyed).json()["predictions"][0],
        response.json()["predictions"][0],
    )
    if signature == "caption_with_attention":
        attention = response.json()["predictions"][0]["attention"]
        assert len(attention[0]) == 16  # 64x64 pixels through SmallCNN -> a 4x4 grid of regions


@pytest.mark.parametrize(
    "instance,message",
    [
        ({"b64": base64.b64encode(b"this is no image").decode()}, "instances[0]: not a decodable image"),
        ({"b64": "!!notbase64"}, "instances[0].b64: not valid base64"),
        ({"b64": ""}, "instances[0].b64: empty image"),
        ("a plain string", 'instances[0]: expected {"b64": "<base64 of the image file>"}, got str'),
        ({"text": "a"}, "instances[0]: fields ['text']; this model's only input is 'image_bytes'"),
    ],
)
def test_bad_images_get_400(caption_client, instance, message):
    response = caption_client.post("/v1/models/cap:predict", json={"instances": [instance]})
    assert response.status_code == 400 and message in response.json()["error"]
