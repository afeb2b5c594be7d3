"""The HTTP service against a real local Ray Serve application (one per module).

Same numbers as ``VariantScorer`` and the batch job's Parquet, the batch job's
reject reasons, every bad request answered 4xx as JSON (the next one still
works), the token, a bounded concurrent burst.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURE_FASTA, FIXTURE_VCF
from dnacnn.genome import Genome
from dnacnn.models import load, predict_sequences
from dnacnn.scoring import VariantScorer
from dnacnn.scoring.batch import score_vcf
from dnacnn.serve import MAX_BODY_BYTES, MAX_VARIANTS, ServiceArgs
from dnacnn.serve.http_io import BODY_TIMEOUT_S
from test_scoring import TASKS, real_snvs, save_tiny

pytestmark = pytest.mark.slow  # a Ray Serve application and two batch jobs: about a minute

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOL = 1e-5
KEY = ["chrom", "pos", "ref", "alt"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(args: ServiceArgs) -> str:
    """Deploy on the session's Ray cluster; the caller stops it with ``serve.shutdown()``."""
    from dnacnn.serve.runner import start

    return start(args, host="127.0.0.1", port=free_port())


def vcf_variants(n_snvs: int = 12, n_indels: int = 12) -> pd.DataFrame:
    """Real SNVs (REF from the genome) and the fixture's first real indels, in genome order."""
    snvs = real_snvs(Genome(FIXTURE_FASTA), n_snvs)
    snvs["id"] = [f"snv{i}" for i in range(n_snvs)]
    with gzip.open(FIXTURE_VCF, "rt") as handle:
        lines = [line.split("\t") for line in handle if not line.startswith("#")][:n_indels]
    indels = pd.DataFrame([{"chrom": f[0], "pos": int(f[1]), "ref": f[3], "alt": f[4], "id": f"indel{i}"}
                           for i, f in enumerate(lines)])
    return pd.concat([snvs, indels], ignore_index=True)


def write_vcf(df: pd.DataFrame, path) -> None:
    with gzip.open(FIXTURE_VCF, "rt") as handle:
        header = [line for line in handle if line.startswith("##contig")]
    body = [f"{r.chrom}\t{r.pos}\t{r.id}\t{r.ref}\t{r.alt}\t.\tPASS\t." for r in df.itertuples()]
    path.write_text("##fileformat=VCFv4.2\n" + "".join(header)
                    + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "\n".join(body) + "\n")


def as_json(df: pd.DataFrame) -> list[dict]:
    return [{"chrom": r.chrom, "pos": int(r.pos), "ref": r.ref, "alt": r.alt, "id": r.id} for r in df.itertuples()]


@pytest.fixture(scope="module")
def setup(ray_session, tmp_path_factory):
    """The model, the variants, the batch job's Parquet (RC off and on), then the service."""
    from ray import serve

    tmp = tmp_path_factory.mktemp("serve")
    model_dir = save_tiny(tmp / "model")
    variants = vcf_variants()
    write_vcf(variants, tmp / "variants.vcf")
    parquet = {}
    for rc in (False, True):
        out = tmp / f"batch_rc{int(rc)}"
        summary = score_vcf(str(model_dir), FIXTURE_FASTA, tmp / "variants.vcf", out, rc=rc,
                            num_actors=1, plot=False)
        assert summary["alleles_scored"] == len(variants)
        parquet[rc] = pq.read_table(out / "scores").to_pandas()
    url = start_service(ServiceArgs(model=str(model_dir), genome=str(FIXTURE_FASTA), token=TOKEN))
    client = httpx.Client(base_url=url, headers=AUTH, timeout=60)
    yield {"url": url, "client": client, "model_dir": model_dir, "variants": variants, "parquet": parquet}
    client.close()
    serve.shutdown()


def post_score(setup, variants: list[dict], **extra) -> httpx.Response:
    return setup["client"].post("/v1/score", json={"variants": variants, **extra})


def assert_valid_request_works(setup) -> None:
    response = post_score(setup, as_json(setup["variants"].iloc[:2]))
    assert response.status_code == 200, response.text
    assert response.json()["n_scored"] == 2


# ---- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("rc", [False, True])
def test_http_scores_equal_variant_scorer_and_batch_parquet(setup, rc):
    variants = setup["variants"]
    response = post_score(setup, as_json(variants), rc=rc)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tasks"] == TASKS and body["rc"] is rc
    results = body["results"]
    assert [r["id"] for r in results] == list(variants["id"])  # request order
    assert all(r["status"] == "scored" for r in results)
    assert {r["kind"] for r in results} >= {"SNV", "insertion", "deletion"}
    http = np.array([r["delta"] for r in results])
    http_logit = np.array([r["logit_delta"] for r in results])

    api = VariantScorer(str(setup["model_dir"]), FIXTURE_FASTA, rc=rc).score_dataframe(variants)
    np.testing.assert_allclose(http, np.stack(api["delta"]), atol=TOL)
    np.testing.assert_allclose(http_logit, np.stack(api["logit_delta"]), atol=TOL)
    assert [r["max_task"] for r in results] == list(api["max_task"])
    np.testing.assert_allclose([r["max_abs_delta"] for r in results], api["max_abs_delta"], atol=TOL)

    batch = variants[KEY].merge(setup["parquet"][rc], on=KEY, how="left", validate="one_to_one")
    np.testing.assert_allclose(http, np.stack(batch["delta"]), atol=TOL)
    np.testing.assert_allclose(http_logit, np.stack(batch["logit_delta"]), atol=TOL)
    assert [r["kind"] for r in results] == list(batch["kind"])


def test_default_rc_is_the_service_setting(setup):
    body = post_score(setup, as_json(setup["variants"].iloc[:1])).json()
    assert body["rc"] is False
    assert body["results"][0]["delta"] == post_score(setup, as_json(setup["variants"].iloc[:1]), rc=False).json()["results"][0]["delta"]


def test_rejected_variants_carry_the_batch_jobs_reasons_in_request_order(setup):
    good = as_json(setup["variants"].iloc[:1])[0]
    wrong_ref = dict(good, ref="ACGT"[("ACGT".index(good["ref"]) + 1) % 4], id="wrong_ref")
    bad = [
        wrong_ref,
        {"chrom": "chrUn_nope", "pos": 10, "ref": "A", "alt": "G", "id": "contig"},
        {"chrom": "20", "pos": good["pos"], "ref": good["ref"], "alt": "<DEL>", "id": "symbolic"},
        {"chrom": "20", "pos": good["pos"], "ref": good["ref"], "alt": ".", "id": "missing"},
        {"chrom": "20", "pos": good["pos"], "ref": good["ref"], "alt": "XYZ", "id": "invalid"},
        {"chrom": "20", "pos": 63_025_520 + 50, "ref": "A", "alt": "G", "id": "past_end"},
        {"chrom": "20", "pos": good["pos"], "ref": "", "alt": "G", "id": "no_ref"},  # a VCF's REF '.'
        {"chrom": "20", "pos": good["pos"], "ref": good["ref"], "alt": good["ref"] + ".", "id": "single_breakend"},
    ]
    response = post_score(setup, [good] + bad)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["snv0"] + [b["id"] for b in bad]
    assert results[0]["status"] == "scored"
    assert [r["status"] for r in results[1:]] == ["rejected"] * len(bad)
    api = VariantScorer(str(setup["model_dir"]), FIXTURE_FASTA).score_dataframe(pd.DataFrame([good] + bad))
    assert [r.get("reason") for r in results] == list(api["reason"])
    assert [r["kind"] for r in results] == list(api["kind"])  # rejects too, as the batch job's rejects/
    assert results[3]["kind"] == "symbolic" and results[4]["kind"] == "missing"
    reasons = [r["reason"] for r in results[1:]]
    assert reasons[:5] == ["ref_mismatch", "unknown_contig", "symbolic_allele", "missing_alt", "invalid_allele"]
    assert reasons[5] == "ref_mismatch" and "past the end of contig" in results[6]["message"]
    assert reasons[6:] == ["malformed", "symbolic_allele"] and "REF is missing" in results[7]["message"]
    assert response.json()["n_rejected"] == len(bad)

    all_bad = post_score(setup, bad[:2])
    assert all_bad.status_code == 422
    body = all_bad.json()
    assert body["error"] == "all_rejected" and "ref_mismatch" in body["message"]
    assert [r["reason"] for r in body["results"]] == ["ref_mismatch", "unknown_contig"]
    assert_valid_request_works(setup)


def test_unusual_records_get_the_batch_jobs_verdicts_words_and_numbers(setup, tmp_path):
    """One VCF of unusual records (lower case, an MNV, indels longer than the window, a
    multi-allelic site with '*', '<DEL>', a single breakend, IUPAC and ALT = REF, a window of
    N, an alias, an absent contig, REF '.', the contig's last base, past its end) and the same
    rows as one request: the service scores the rows the batch job scores, with its numbers,
    and rejects the others with its reasons, in its words."""
    genome = Genome(FIXTURE_FASTA)
    end = genome.length("20")
    p = 150_001

    def ref(pos: int, n: int = 1) -> str:  # the genome's bases at 1-based pos
        return genome.fetch("20", pos - 1, pos - 1 + n)

    def other(base: str) -> str:
        return "A" if base != "A" else "C"

    records = [  # chrom, pos, id, ref, alt (ALT alleles comma-separated)
        ("20", p, "lower", ref(p).lower(), other(ref(p)).lower()),
        ("20", p + 10, "mnv", ref(p + 10, 3), "NAC"),
        ("20", p + 20, "ins150", ref(p + 20), ref(p + 20) + "ACGTT" * 30),
        ("20", p + 30, "del150", ref(p + 30, 151), ref(p + 30)),
        ("20", p + 200, "multi", ref(p + 200), f"{other(ref(p + 200))},*,<DEL>,{ref(p + 200)}.,R,{ref(p + 200)}"),
        ("20", p + 210, "ref_dot", ".", "A"),
        ("20", 100, "in_n", "N", "A"),
        ("20", end, "last_base", "N", "A"),
        ("20", end - 1, "past_end", "NNN", "N"),
        ("chr20", p + 300, "alias", ref(p + 300), other(ref(p + 300))),
        ("21", 100, "absent", "A", "C"),
    ]
    vcf = tmp_path / "unusual.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=20>\n##contig=<ID=chr20>\n##contig=<ID=21>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"{c}\t{pos}\t{i}\t{r}\t{a}\t.\t.\t.\n" for c, pos, i, r, a in records))
    score_vcf(str(setup["model_dir"]), FIXTURE_FASTA, vcf, tmp_path / "out", num_actors=1, plot=False)
    batch_scores = pq.read_table(tmp_path / "out" / "scores").to_pandas().set_index(["id", "alt"])
    batch_rejects = pq.read_table(tmp_path / "out" / "rejects").to_pandas().set_index(["id", "alt"])

    rows = [{"chrom": c, "pos": pos, "ref": r, "alt": a, "id": i}
            for c, pos, i, r, alts in records for a in alts.split(",")]
    results = post_score(setup, rows).json()["results"]
    assert len(batch_scores) + len(batch_rejects) == len(rows) == len(results)
    for row, got in zip(rows, results):
        key = (row["id"], row["alt"].upper())
        if got["status"] == "scored":
            np.testing.assert_allclose(got["delta"], batch_scores.loc[key, "delta"], atol=TOL, err_msg=str(key))
            assert got["kind"] == batch_scores.loc[key, "kind"]
        else:
            assert (got["reason"], got["message"]) == tuple(batch_rejects.loc[key, ["reason", "message"]]), key
    verdicts = {(r["id"], r["alt"]): r.get("reason") for r in results}
    assert [k for k, v in verdicts.items() if v is None] == [
        ("lower", rows[0]["alt"]), ("mnv", "NAC"), ("ins150", rows[2]["alt"]), ("del150", rows[3]["alt"]),
        ("multi", rows[4]["alt"]), ("in_n", "A"), ("last_base", "A"), ("alias", rows[-2]["alt"])]
    assert [v for k, v in verdicts.items() if k[0] == "multi"][1:] == [
        "symbolic_allele", "symbolic_allele", "symbolic_allele", "invalid_allele", "invalid_allele"]
    assert (verdicts[("ref_dot", "A")], verdicts[("past_end", "N")], verdicts[("absent", "C")]) == (
        "malformed", "ref_mismatch", "unknown_contig")


# ---- bad requests -----------------------------------------------------------------------

V = {"chrom": "20", "pos": 150001, "ref": "A", "alt": "G"}
BAD_BODIES = {
    "not_json": (b"{variants: nope", 400, "invalid_json"),
    "not_utf8": (b"\xff\xfe\x00garbage", 400, "invalid_json"),
    "nested_too_deep": (b"[" * 200_000, 400, "invalid_json"),
    "empty_body": (b"", 400, "invalid_json"),
    "top_level_list": (json.dumps([V]).encode(), 422, "invalid_request"),
    "pos_not_int": (json.dumps({"variants": [dict(V, pos="abc")]}).encode(), 422, "invalid_request"),
    "pos_zero": (json.dumps({"variants": [dict(V, pos=0)]}).encode(), 422, "invalid_request"),
    "missing_alt": (json.dumps({"variants": [{k: v for k, v in V.items() if k != "alt"}]}).encode(), 422,
                    "invalid_request"),
    "chrom_not_string": (json.dumps({"variants": [dict(V, chrom=20)]}).encode(), 422, "invalid_request"),
    "unknown_field": (json.dumps({"variants": [V], "threshold": 3}).encode(), 422, "invalid_request"),
    "no_variants": (json.dumps({"variants": []}).encode(), 422, "invalid_request"),
    "rc_not_bool": (json.dumps({"variants": [V], "rc": "maybe"}).encode(), 422, "invalid_request"),
    "too_many_variants": (json.dumps({"variants": [V] * (MAX_VARIANTS + 1)}).encode(), 422, "invalid_request"),
    # strict JSON types: no conversion of a string, a boolean or a float to a position
    "pos_string_of_digits": (json.dumps({"variants": [dict(V, pos="150001")]}).encode(), 422, "invalid_request"),
    "pos_true": (json.dumps({"variants": [dict(V, pos=True)]}).encode(), 422, "invalid_request"),
    "pos_float": (json.dumps({"variants": [dict(V, pos=150001.0)]}).encode(), 422, "invalid_request"),
    "pos_past_vcf_range": (json.dumps({"variants": [dict(V, pos=2 ** 31)]}).encode(), 422, "invalid_request"),
    "rc_string_true": (json.dumps({"variants": [V], "rc": "true"}).encode(), 422, "invalid_request"),
    "number_of_5000_digits": (b'{"variants": [{"chrom": "20", "pos": ' + b"1" * 5000 + b', "ref": "A", "alt": "G"}]}',
                              400, "invalid_json"),
    "body_too_large": (b'{"variants": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}", 413, "too_large"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_score_requests_are_4xx_json_and_the_next_request_works(setup, case):
    body, status, error = BAD_BODIES[case]
    response = setup["client"].post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == error and answer["message"]
    assert "Traceback" not in response.text
    if case == "too_many_variants":
        assert str(MAX_VARIANTS) in answer["message"]
    if case == "body_too_large":
        assert str(MAX_BODY_BYTES) in answer["message"]
    if case == "pos_zero":
        assert answer["errors"][0]["loc"] == "variants.0.pos"
    assert "sys." not in answer["message"]  # no advice meant for the server's Python
    assert_valid_request_works(setup)


def test_a_newline_is_not_a_base(setup):
    results = post_score(setup, [dict(V, alt="G\n"), dict(V, ref="A\n")]).json()["results"]
    assert [r["reason"] for r in results] == ["invalid_allele", "invalid_allele"]


def test_a_letter_that_upper_cases_to_bases_is_named_as_sent(setup):
    """'ı'.upper() is 'I' and 'ﬀ'.upper() is 'FF': the reject named 'FF', an insertion."""
    good = as_json(setup["variants"].iloc[:1])[0]
    results = post_score(setup, [good, dict(V, alt="\u0131"), dict(V, alt="\ufb00")]).json()["results"]
    assert [(r.get("reason"), r["kind"]) for r in results[1:]] == [("invalid_allele", "unknown")] * 2
    assert "ALT '\u0131'" in results[1]["message"] and "ALT '\ufb00'" in results[2]["message"]


def test_requests_a_browser_form_could_send_or_a_proxy_could_misread_are_refused(setup):
    """A text/plain or form POST (what another site's page can send without asking) was scored;
    query parameters were ignored ('?rc=true' gave rc false); '/v1/score/' redirected to the
    client's own Host header; a 900 kB unknown field name was echoed twice (a 1.8 MB answer);
    a UTF-16 guess named a codec the client never chose."""
    client, body = setup["client"], json.dumps({"variants": as_json(setup["variants"].iloc[:1])}).encode()
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = client.post("/v1/score", content=body, headers={"Content-Type": media})
        assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type", media
    for media in ("application/json; charset=utf-8", "application/vnd.api+json"):
        assert client.post("/v1/score", content=body, headers={"Content-Type": media}).status_code == 200, media
    # no Content-Type at all (a page's fetch of a Blob of no type, sent without asking) was scored
    bare = client.post("/v1/score", content=body)
    assert bare.status_code == 415 and bare.json()["message"].startswith("the request has no Content-Type"), bare.text
    query = client.post("/v1/score?rc=true", content=body, headers={"Content-Type": "application/json"})
    assert query.status_code == 422 and "rc" in query.json()["message"], query.text
    slash = client.post("/v1/score/", content=body, headers={"Content-Type": "application/json", "Host": "evil.example"})
    assert slash.status_code == 404 and "location" not in slash.headers
    huge_name = json.dumps({"variants": [V], "x" * 900_000: 1}).encode()
    response = client.post("/v1/score", content=huge_name, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and len(response.content) < 2_000, len(response.content)
    long_path = client.get("/" + "p" * 20_000)
    assert long_path.status_code == 404 and len(long_path.content) < 1_000
    utf16 = client.post("/v1/score", content=b"\xff\xfe" + body, headers={"Content-Type": "application/json"})
    assert utf16.status_code == 400 and utf16.json()["message"].startswith("the request body is not UTF-8 text")
    assert_valid_request_works(setup)


def test_router_errors_have_the_error_shape_and_get_routes_answer_head(setup):
    client = setup["client"]
    for method, path, status, error in (("GET", "/nope", 404, "not_found"),
                                        ("GET", "/v1/score", 405, "method_not_allowed"),
                                        ("POST", "/healthz", 405, "method_not_allowed")):
        response = client.request(method, path)
        assert response.status_code == status and response.json()["error"] == error, (method, path)
    for path in ("/", "/healthz", "/v1/model"):
        assert client.head(path).status_code == 200, path
    gzipped = client.post("/v1/score", content=gzip.compress(json.dumps({"variants": [V]}).encode()),
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert gzipped.status_code == 415 and gzipped.json()["error"] == "unsupported_encoding"
    odd = client.post("/v1/score", content=b"{}", headers={"Content-Type": "application/json", "Content-Encoding": "x" * 6000})
    assert odd.status_code == 415 and len(odd.content) < 500, len(odd.content)  # was all 6,000 echoed
    assert_valid_request_works(setup)


def test_a_stalled_body_times_out_and_frees_its_slot(setup):
    """A client that sends its headers and part of its body, then nothing: 408 once
    BODY_TIMEOUT_S has passed, not a request slot held for good."""
    url = httpx.URL(setup["url"])
    host, port = url.host, url.port
    head = (f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"variants\": [")
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 30) as sock:
        sock.sendall(head.encode())
        t0 = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - t0 < BODY_TIMEOUT_S + 20
    assert_valid_request_works(setup)


def test_body_over_the_limit_without_content_length_is_refused(setup):
    def chunks():  # chunked transfer encoding: no Content-Length to check up front
        yield b'{"variants": ['
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536
        yield b"]}"

    response = setup["client"].post("/v1/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert_valid_request_works(setup)


# ---- token, model, predict --------------------------------------------------------------


def test_v1_needs_the_token_and_healthz_does_not(setup):
    with httpx.Client(base_url=setup["url"], timeout=30) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path in (("GET", "/v1/model"), ("POST", "/v1/score"), ("POST", "/v1/predict")):
                response = anonymous.request(method, path, headers=headers, json={"variants": [V]})
                assert response.status_code == 401, (path, headers)
                assert response.json()["error"] == "unauthorized"
        assert "dnacnn" in anonymous.get("/").text  # the page itself is public; it sends the token
    assert_valid_request_works(setup)


def test_model_reports_what_is_served(setup):
    info = setup["client"].get("/v1/model").json()
    weights = (setup["model_dir"] / "model.safetensors").read_bytes()
    assert info["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert info["tasks"] == TASKS and info["seq_len"] == 100 and info["task_type"] == "multitask"
    assert info["rc"] is False and info["checkpoint"] == str(setup["model_dir"].resolve())
    assert info["registered_name"] is None
    assert info["limits"] == {"max_variants": MAX_VARIANTS, "max_sequences": 256, "max_body_bytes": MAX_BODY_BYTES}


def test_predict_gives_the_pyfunc_probabilities(setup):
    genome = Genome(FIXTURE_FASTA)
    sequences = [genome.fetch("20", 150_000 + 500 * i, 150_100 + 500 * i) for i in range(5)]
    response = setup["client"].post("/v1/predict", json={"sequences": sequences})
    assert response.status_code == 200, response.text
    loaded = load(setup["model_dir"])
    expected = predict_sequences(loaded.model, sequences, loaded.seq_len, loaded.task_type)
    np.testing.assert_allclose(response.json()["probabilities"], expected, atol=TOL)
    assert response.json()["tasks"] == TASKS

    short = setup["client"].post("/v1/predict", json={"sequences": ["ACGT"]})
    assert short.status_code == 422 and "100" in short.json()["message"]
    for odd in ("\x00", "\n", "-", "\U0001f9ec"):  # neither a base nor an IUPAC code
        bad = setup["client"].post("/v1/predict", json={"sequences": [sequences[0][:99] + odd]})
        assert bad.status_code == 422 and "at base 100 (1-based)" in bad.json()["message"], odd
    iupac = setup["client"].post("/v1/predict", json={"sequences": [sequences[0][:99] + "R"]})
    assert iupac.status_code == 200  # read as unknown, as N is
    assert setup["client"].post("/v1/predict", json={"sequences": "ACGT"}).status_code == 422
    assert_valid_request_works(setup)


def test_openapi_documents_the_request_and_response_models(setup):
    spec = setup["client"].get("/openapi.json").json()
    score = spec["paths"]["/v1/score"]["post"]
    assert "variants" in json.dumps(score["requestBody"])
    assert {"200", "413", "422"} <= set(score["responses"])
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec))
    assert refs and set(refs) <= set(spec["components"]["schemas"])  # every reference resolves
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), ids  # client generators key methods by them
    assert set(spec["paths"]["/healthz"]) == {"get"}  # HEAD answers, undocumented beside GET
    assert setup["client"].get("/docs").status_code == 200


# ---- concurrency ------------------------------------------------------------------------


def test_concurrent_burst_is_answered_with_the_right_numbers(setup):
    """32 clients, half of them asking for RC averaging: batches mix both settings."""
    variants = setup["variants"]
    expected = {rc: np.stack(VariantScorer(str(setup["model_dir"]), FIXTURE_FASTA, rc=rc)
                             .score_dataframe(variants)["delta"]) for rc in (False, True)}
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(variants), size=8, replace=False) for _ in range(32 * 3)]

    def client_run(k: int) -> list[tuple[bool, np.ndarray, np.ndarray]]:
        rc, got = bool(k % 2), []
        with httpx.Client(base_url=setup["url"], headers=AUTH, timeout=60) as client:
            for pick in picks[3 * k:3 * k + 3]:
                response = client.post("/v1/score", json={"variants": as_json(variants.iloc[pick]), "rc": rc})
                assert response.status_code == 200, response.text
                assert response.json()["rc"] is rc
                got.append((rc, pick, np.array([r["delta"] for r in response.json()["results"]])))
        return got

    with ThreadPoolExecutor(32) as pool:
        answers = [a for part in pool.map(client_run, range(32)) for a in part]
    assert len(answers) == 96
    for rc, pick, delta in answers:
        np.testing.assert_allclose(delta, expected[rc][pick], atol=TOL)


# ---- the cluster's Serve ----------------------------------------------------------------


def test_a_second_service_on_the_cluster_is_refused_and_a_running_proxy_keeps_its_port(setup, caplog):
    """On a cluster that already ran a service, `dnacnn serve --port P` printed http://...:P/,
    where nothing listened (Serve keeps its proxy's port and only logs that the new one is
    ignored), and it replaced the running service's application (same name, route /); its
    stop then took both down. Now a running application is refused, and the printed URL is
    the proxy's (Serve's private client is read in dnacnn.serve.serve_internals: pinned here)."""
    from ray import serve

    from dnacnn.serve.runner import APP_NAME, ServiceRunningError, start
    from dnacnn.serve.serve_internals import proxy_address

    host, port = proxy_address()
    assert setup["url"] == f"http://{host}:{port}/"
    args = ServiceArgs(model=str(setup["model_dir"]), genome=str(FIXTURE_FASTA), token=TOKEN)
    with pytest.raises(ServiceRunningError, match="already serves the application 'dnacnn' \\(RUNNING"):
        start(args, port=free_port())
    assert_valid_request_works(setup)  # the running service is untouched

    serve.delete(APP_NAME)  # Serve and its proxy stay, as after a joined service's stop
    with caplog.at_level(logging.WARNING, logger="dnacnn.serve.runner"):
        url = start(args, port=free_port())
    assert url == setup["url"]
    assert any(f"its proxy listens on {host}:{port}" in r.message for r in caplog.records), caplog.text
    assert_valid_request_works(setup)
