"""Online variant scoring: a Ray Serve deployment with a FastAPI ingress and a page.

``POST /v1/score`` answers with the numbers of the batch job and of
``VariantScorer`` (it is the same scorer), ``POST /v1/predict`` with the
pyfunc's probabilities, ``GET /v1/model`` says what is served, ``GET /`` is a
page for people. Limits are in :mod:`dnacnn.serve.schemas`.
"""

from dnacnn.serve.app import ServiceArgs, build_app
from dnacnn.serve.schemas import MAX_BODY_BYTES, MAX_SEQUENCES, MAX_VARIANTS

__all__ = ["MAX_BODY_BYTES", "MAX_SEQUENCES", "MAX_VARIANTS", "ServiceArgs", "build_app"]
