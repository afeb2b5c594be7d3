"""The Ray Serve application: one deployment, a FastAPI ingress, the one scorer.

Each replica loads the pinned model once (:mod:`dnacnn.serve.model_source`) and
holds two :class:`~dnacnn.scoring.scorer.VariantScorer` objects over that one
model and genome, without and with reverse-complement averaging, so a request
chooses ``rc`` freely. Concurrent ``/v1/score`` requests are grouped by
``@serve.batch`` into one ``score_columns`` call per RC setting: one set of
forward passes for many small requests.

``build_app`` is the application builder that ``dnacnn serve``, ``serve run``
and ``serve deploy`` (``import_path: dnacnn.serve.app:build_app``) call.
"""

import asyncio
import hmac
import logging
import os
from importlib.resources import files
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from ray import serve
from ray.serve import Application

from dnacnn.genome import Genome
from dnacnn.models import predict_sequences
from dnacnn.scoring.scorer import VariantScorer
from dnacnn.serve.http_io import ApiError, api_error_handler, http_error_handler, read_model
from dnacnn.serve.model_source import ModelSource, load_source, resolve_model
from dnacnn.serve.schemas import (
    ErrorResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    ScoreRequest,
    ScoreResponse,
    Variant,
)

log = logging.getLogger(__name__)

TOKEN_ENV = "DNACNN_API_TOKEN"
#: Requests (not variants) grouped into one scoring call.
MAX_BATCH_REQUESTS = 32
#: How long a request waits for others to join its batch, seconds.
BATCH_WAIT_S = 0.002


class ServiceArgs(BaseModel):
    """What a service runs: the builder's arguments (``args:`` of a Serve config file)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="models:/NAME@alias, models:/NAME/VERSION, runs:/... or a checkpoint folder")
    genome: str = Field(description="indexed FASTA the variants are called on")
    rc: bool = False  # default RC averaging (a request may override it)
    device: str = "cpu"  # "cuda": one GPU per replica
    precision: Literal["fp32", "bf16"] = "fp32"  # fp32: exact; bf16: the fast path (as dnacnn score)
    token: str | None = None  # bearer token for /v1/*; default: $DNACNN_API_TOKEN
    num_replicas: int | None = Field(default=None, ge=1)  # None: 1, or the config's autoscaling_config
    num_cpus: float = Field(default=1, gt=0)  # CPUs per replica
    num_threads: int | None = Field(default=None, ge=1)  # torch threads per replica (default: num_cpus)
    batch_size: int = Field(default=256, ge=1)  # variants per forward pass

    @field_validator("token")
    @classmethod
    def _visible_ascii(cls, token: str | None) -> str | None:
        return check_token(token)


def check_token(token: str | None) -> str | None:
    """``token`` if every character is visible ASCII (``!`` to ``~``).

    An HTTP header carries it, and the service reads a header's bytes as Latin-1: a token with
    other characters (``é``, a space) could never match what a client sends.

    Raises:
        ValueError: naming the first character's place, not the secret.
    """
    for place, char in enumerate(token or "", start=1):
        if not "!" <= char <= "~":
            raise ValueError(f"the token's character {place} is not visible ASCII (! to ~): "
                             "a client could never send it in an HTTP header")
    return token


def _page() -> str:
    return files("dnacnn.serve").joinpath("static/index.html").read_text(encoding="utf-8")


# /docs and /redoc from files the package carries (FastAPI's own load Swagger UI from a CDN:
# a blank page on a cluster without internet)
api = FastAPIOffline(
    title="dnacnn variant scoring",
    description="Per-cell-type effects of DNA variants from a trained CNN: the numbers of "
                "`dnacnn score` (the batch job) for a few variants at a time.",
    version="1",
    redirect_slashes=False,  # '/v1/score/' is 404: a redirect would name the client's own Host header
)
api.add_exception_handler(ApiError, api_error_handler)
api.add_exception_handler(StarletteHTTPException, http_error_handler)
_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 408, 413, 415, 422)}


def _body_schema(model: type[BaseModel]) -> dict:
    """OpenAPI for a body read by :func:`read_model` (not by FastAPI's own parsing), its
    nested models inlined so the schema stands alone (they are not recursive)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


def _json(model: BaseModel) -> Response:
    """``model`` serialised by pydantic-core (several times faster than FastAPI's
    ``json.dumps`` path for responses of thousands of floats)."""
    return Response(model.model_dump_json(), media_type="application/json")


def _results(variants: list[Variant], cols: dict) -> list[dict]:
    """One result per variant from ``VariantScorer.score_columns``' columns."""
    delta, logit_delta = cols["delta"].tolist(), cols["logit_delta"].tolist()
    out = []
    for k, v in enumerate(variants):
        row = {"id": v.id, "chrom": v.chrom, "pos": v.pos, "ref": v.ref, "alt": v.alt}
        if cols["reason"][k] is None:
            row.update(status="scored", kind=cols["kind"][k], delta=delta[k], logit_delta=logit_delta[k],
                       max_abs_delta=float(cols["max_abs_delta"][k]), max_task=cols["max_task"][k])
        else:
            row.update(status="rejected", kind=cols["kind"][k], reason=cols["reason"][k], message=cols["message"][k])
        out.append(row)
    return out


@serve.deployment(max_ongoing_requests=64, health_check_period_s=5)
@serve.ingress(api)
class ScoringService:
    """One replica: the model, the genome, two scorers (RC off / on)."""

    def __init__(self, args: ServiceArgs, source: ModelSource, token: str | None) -> None:
        loaded, sha256 = load_source(source, args.device)
        genome = Genome(args.genome)
        threads = args.num_threads or max(1, int(args.num_cpus))
        self.scorers = {
            rc: VariantScorer(loaded, genome, rc=rc, batch_size=args.batch_size, device=args.device,
                              num_threads=threads, precision=args.precision)
            for rc in (False, True)
        }
        self.loaded, self.rc, self.token = loaded, args.rc, token
        self.info = ModelInfo(
            source=source.spec, registered_name=source.registered_name, version=source.version,
            alias=source.alias, checkpoint=source.checkpoint, weights_sha256=sha256,
            tasks=loaded.tasks, seq_len=loaded.seq_len, task_type=loaded.task_type, rc=args.rc,
            precision=args.precision, genome=str(args.genome),
        )
        log.info("replica ready: %s (%d tasks, L=%d)", source.spec, len(loaded.tasks), loaded.seq_len)

    def _authorize(self, request: Request) -> None:
        if self.token is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {self.token}".encode()):
            raise ApiError(401, "unauthorized", "this service needs 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})

    # GET routes answer HEAD too (health checkers and link checkers send it): a route of its
    # own, out of the schema, since one route with both methods gives both one operation id
    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    @api.head("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(self) -> HTMLResponse:
        return HTMLResponse(_page())

    @api.get("/healthz")
    @api.head("/healthz", include_in_schema=False)
    async def healthz(self) -> dict:
        return {"status": "ok"}

    @api.get("/v1/model", response_model=ModelInfo, responses=_ERRORS)
    @api.head("/v1/model", response_model=ModelInfo, include_in_schema=False)
    async def model(self, request: Request) -> ModelInfo:
        self._authorize(request)
        return self.info

    @api.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS,
              openapi_extra=_body_schema(ScoreRequest))
    async def score(self, request: Request) -> Response:
        """Score variants; 422 (with the reasons) when none can be scored."""
        self._authorize(request)
        body = await read_model(request, ScoreRequest)
        rc = self.rc if body.rc is None else body.rc
        results = await self._score_batch((rc, body.variants))
        n_scored = sum(r["status"] == "scored" for r in results)
        answer = {"tasks": self.loaded.tasks, "rc": rc, "n_scored": n_scored,
                  "n_rejected": len(results) - n_scored, "results": results}
        if not n_scored:
            reasons = sorted({r["reason"] for r in results})
            raise ApiError(422, "all_rejected", f"no variant could be scored ({', '.join(reasons)}); "
                                                "see results for each one's reason", **answer)
        return _json(ScoreResponse.model_validate(answer))

    @api.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS,
              openapi_extra=_body_schema(PredictRequest))
    async def predict(self, request: Request) -> Response:
        """Per-task probabilities of sequences of exactly seq_len bases (the pyfunc's numbers)."""
        self._authorize(request)
        body = await read_model(request, PredictRequest)
        m = self.loaded
        try:
            probs = await asyncio.to_thread(predict_sequences, m.model, body.sequences, m.seq_len, m.task_type)
        except ValueError as err:
            raise ApiError(422, "invalid_sequence", str(err)) from None
        return _json(PredictResponse(tasks=m.tasks, task_type=m.task_type, probabilities=probs.tolist()))

    @serve.batch(max_batch_size=MAX_BATCH_REQUESTS, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _score_batch(self, items: list[tuple[bool, list[Variant]]]) -> list[list[dict]]:
        """Score several requests' variants together (one scoring call per RC setting)."""
        return await asyncio.to_thread(self._score_items, items)

    def _score_items(self, items: list[tuple[bool, list[Variant]]]) -> list[list[dict]]:
        out: list[list[dict]] = [[] for _ in items]
        for rc, scorer in self.scorers.items():
            which = [i for i, (item_rc, _) in enumerate(items) if item_rc == rc]
            variants = [v for i in which for v in items[i][1]]
            if not variants:
                continue
            cols = scorer.score_columns([v.chrom for v in variants], [v.pos for v in variants],
                                        [v.ref for v in variants], [v.alt for v in variants])
            results = _results(variants, cols)
            lo = 0
            for i in which:
                out[i] = results[lo:lo + len(items[i][1])]
                lo += len(items[i][1])
        return out


def build_app(args: ServiceArgs) -> Application:
    """The Serve application for ``args`` (the model is pinned here, in the driver)."""
    source = resolve_model(args.model)
    Genome(args.genome)  # refuses a missing or unindexed FASTA before any replica starts
    token = check_token(args.token or os.environ.get(TOKEN_ENV) or None)
    actor = {"num_cpus": args.num_cpus}
    if args.device.startswith("cuda"):
        actor["num_gpus"] = 1
    env = {k: os.environ[k] for k in ("MLFLOW_TRACKING_URI",) if os.environ.get(k)}
    if env:
        actor["runtime_env"] = {"env_vars": env}
    scale = {"num_replicas": args.num_replicas} if args.num_replicas else {}
    deployment = ScoringService.options(ray_actor_options=actor, **scale)
    return deployment.bind(args, source, token)
