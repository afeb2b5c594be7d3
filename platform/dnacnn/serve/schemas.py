"""Request and response models of the HTTP API, and its documented limits.

FastAPI publishes these as the OpenAPI schema (``/docs``). Requests are checked
here (strict JSON types: ``"pos": "12"`` or ``true`` is refused, not converted;
required fields, ``1 <= pos < 2**31``, list lengths); the domain rules
(does REF match the genome, is the allele scorable) belong to the scorer, which
answers with the batch job's reject reasons.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

#: Most variants in one ``POST /v1/score`` request (split larger sets; the batch
#: job, ``dnacnn score``, is for whole VCFs).
MAX_VARIANTS = 1000
#: Most sequences in one ``POST /v1/predict`` request.
MAX_SEQUENCES = 256
#: Largest request body accepted, bytes (413 above it).
MAX_BODY_BYTES = 1 << 20
#: Longest CHROM / ID string accepted.
MAX_NAME_CHARS = 256
#: Largest POS accepted: VCF's (a 32-bit signed integer).
MAX_POS = (1 << 31) - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    """One (variant, ALT allele); several ALT alleles are several variants."""

    chrom: str = Field(min_length=1, max_length=MAX_NAME_CHARS, examples=["20"])
    pos: int = Field(ge=1, le=MAX_POS, strict=True, description="1-based position (VCF POS), a JSON integer",
                     examples=[150001])
    ref: str = Field(description="REF allele as in the VCF (A, C, G, T, N)", examples=["A"])
    alt: str = Field(description="one ALT allele (A, C, G, T, N)", examples=["G"])
    id: str | None = Field(default=None, max_length=MAX_NAME_CHARS, description="echoed back")


class ScoreRequest(_Strict):
    variants: list[Variant] = Field(min_length=1, max_length=MAX_VARIANTS)
    rc: bool | None = Field(
        default=None, strict=True, description="average both strands' probabilities; default: the service's setting"
    )


class _Echo(BaseModel):
    id: str | None
    chrom: str
    pos: int
    ref: str
    alt: str


class ScoredVariant(_Echo):
    status: Literal["scored"] = "scored"
    kind: str = Field(description="SNV, MNV, insertion or deletion")
    delta: list[float] = Field(description="T values p_alt - p_ref, in the order of `tasks`")
    logit_delta: list[float] = Field(description="T log-odds (multiclass: log-probability) differences")
    max_abs_delta: float
    max_task: str


class RejectedVariant(_Echo):
    status: Literal["rejected"] = "rejected"
    kind: str = Field(description="as the batch job's rejects: SNV, ..., symbolic, missing or unknown")
    reason: str = Field(description="one of the batch job's reject reasons, e.g. ref_mismatch")
    message: str


VariantResult = Annotated[Union[ScoredVariant, RejectedVariant], Field(discriminator="status")]


class ScoreResponse(BaseModel):
    tasks: list[str] = Field(description="T task (cell type) names: the order of every delta list")
    rc: bool
    n_scored: int
    n_rejected: int
    results: list[VariantResult] = Field(description="one per request variant, in request order")


class PredictRequest(_Strict):
    sequences: list[str] = Field(
        min_length=1, max_length=MAX_SEQUENCES, description="DNA strings of exactly seq_len bases"
    )


class PredictResponse(BaseModel):
    tasks: list[str]
    task_type: str
    probabilities: list[list[float]] = Field(description="(N, T): one list of T per sequence")


class Limits(BaseModel):
    max_variants: int = MAX_VARIANTS
    max_sequences: int = MAX_SEQUENCES
    max_body_bytes: int = MAX_BODY_BYTES


class ModelInfo(BaseModel):
    source: str = Field(description="the model as given: models:/NAME@alias or a checkpoint folder")
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    checkpoint: str | None = Field(default=None, description="the checkpoint folder, when given as one")
    weights_sha256: str
    tasks: list[str]
    seq_len: int
    task_type: str
    rc: bool = Field(description="the service's default RC averaging")
    precision: str = Field(default="fp32", description="fp32 (exact) or bf16 (the fast path), as dnacnn score")
    genome: str
    limits: Limits = Limits()


class ErrorResponse(BaseModel):
    error: str = Field(description="a short code: invalid_json, invalid_request, too_large, unauthorized, ...")
    message: str
    errors: list[dict] | None = None
