"""The FastAPI application: TensorFlow Serving's REST API over the served exports, health, metrics, the page.

Routes (https://www.tensorflow.org/tfx/serving/api_rest for the `/v1` ones):
  GET  /v1/models/NAME            model status
  GET  /v1/models/NAME/metadata   signature_def of every signature (+ "task")
  POST /v1/models/NAME:predict    {"instances": [...]} -> {"predictions": [...]}; {"inputs": ...} -> {"outputs": ...}
  GET  /api/models                the served models with their task and signatures (for the page)
  GET  /healthz                   {"status": "ok", ...}
  GET  /metrics                   Prometheus text format (see `seq2seq.server.metrics`)
  GET  /                          the web page (`static/index.html`, `static/app.js`, `static/style.css`)
Errors are `{"error": "<message naming the field or limit>"}` with a 4xx status (5xx only for a server fault).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time

import tensorflow as tf
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from seq2seq.server.batching import Batcher
from seq2seq.server.metrics import ServerMetrics
from seq2seq.server.request_body import Limits, PredictRequest, RequestError, parse_predict
from seq2seq.server.served_model import ServedModel

log = logging.getLogger(__name__)
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How requests are batched and limited.

    Attributes:
      limits: per-request `Limits` (body bytes, characters per sentence, inputs per request).
      max_batch_size: rows per signature call with batching (default 32).
      max_wait_ms: how long a batch waits to fill, milliseconds (default 5).
      batching: False = one signature call per request.
      threads: concurrent calls with batching off (default 2, the cores of a small machine).
    """

    limits: Limits = Limits()
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    batching: bool = True
    threads: int = 2


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (413 RequestError beyond it)."""
    declared = request.headers.get("content-length", "")
    message = f"request body over the limit of {limit} bytes (--max-body-bytes)"
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, message)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, message)
        chunks.append(chunk)
    return b"".join(chunks)


def _image_check(model: ServedModel, field: str):
    """A `Batcher` check: RequestError(400) naming the first input of a request that is no decodable image."""

    def check(values):
        for i, data in enumerate(values):
            problem = model.image_problem(data)
            if problem:
                return RequestError(400, f"{field}[{i}]: {problem}")
        return None

    return check


def _response(request: PredictRequest, rows: list[dict]) -> dict:
    if request.columnar:
        return {"outputs": {key: [row[key] for row in rows] for key in rows[0]}}
    return {"predictions": rows}


def create_app(models: dict[str, ServedModel], settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The application serving `models` (name -> ServedModel); one `Batcher` per model and signature, started
    and, at shutdown, drained in the app's lifespan. Signatures that are not `ServedModel.batchable` run one
    request per call.
    """
    metrics = ServerMetrics()
    batchers = {
        (name, sig): Batcher(
            functools.partial(model.run, sig),
            settings.max_batch_size,
            settings.max_wait_ms,
            settings.batching and model.batchable(sig),
            settings.threads,
            on_batch=metrics.batch_size.labels(name, sig).observe,
        )
        for name, model in models.items()
        for sig in model.signatures
    }

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for batcher in batchers.values():
            batcher.start()
        yield
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPI(title="seq2seq serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(_request, err: HTTPException):
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(RequestError)
    async def request_error(_request, err: RequestError):
        return JSONResponse({"error": err.message}, status_code=err.status)

    def model_or_404(name: str) -> ServedModel:
        if name not in models:
            raise RequestError(404, f"model {name!r} not found; served models: {sorted(models)}")
        return models[name]

    @app.get("/")
    async def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "models": sorted(models), "batching": settings.batching}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.get("/api/models")
    async def list_models():
        return {
            "models": [
                {"name": name, "task": m.task, "signatures": sorted(m.signatures)} for name, m in sorted(models.items())
            ]
        }

    @app.get("/v1/models/{name}")
    async def status(name: str):
        return model_or_404(name).status()

    @app.get("/v1/models/{name}/metadata")
    async def metadata(name: str):
        return model_or_404(name).metadata()

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request):
        start = time.perf_counter()
        signature, code = "", 500
        try:
            model = model_or_404(name)
            parsed = parse_predict(
                await _read_body(request, settings.limits.max_body_bytes),
                model.input_key,
                model.signatures,
                settings.limits,
            )
            signature = parsed.signature_name
            check = _image_check(model, parsed.field) if model.input_key == "image_bytes" else None
            rows = await batchers[(name, signature)].submit(parsed.values, check)
            code, content = 200, _response(parsed, rows)
        except RequestError as err:
            code, content = err.status, {"error": err.message}
        except tf.errors.InvalidArgumentError as err:
            code, content = 400, {"error": f"the model rejected the input: {str(err).splitlines()[0][:300]}"}
        except Exception as err:  # noqa: BLE001  (a server fault must not end the process)
            log.exception("predict on %s failed", name)
            code, content = 500, {"error": f"internal error: {type(err).__name__}: {err}"}
        label = name if name in models else "(unknown)"
        metrics.requests.labels(label, signature, str(code)).inc()
        metrics.latency.labels(label, signature).observe(time.perf_counter() - start)
        return JSONResponse(content, status_code=code)

    return app
