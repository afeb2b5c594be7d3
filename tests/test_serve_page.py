"""The page at ``/``, used as a person uses it: headless Chromium driven by selenium.

Two valid variants and one with a wrong REF are typed in and submitted; the
tables, the chart and the downloaded TSV must show them. With
``DNACNN_DOCS_SCREENSHOT=1`` the screenshot also replaces ``docs/serve_page.png``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_FASTA, REPO
from dnacnn.genome import Genome
from dnacnn.scoring import VariantScorer
from dnacnn.serve import ServiceArgs
from test_scoring import save_tiny
from test_serve import start_service

pytestmark = pytest.mark.slow

CHROMEDRIVER = "/usr/bin/chromedriver"
CELL_TYPES = ["HepG2", "K562", "GM12878", "H1-hESC", "HeLa-S3", "HUVEC", "A549", "MCF-7", "IMR-90",
              "SK-N-SH", "Jurkat", "HCT116"]


@pytest.fixture(scope="module")
def page_service(ray_session, tmp_path_factory):
    from ray import serve

    model_dir = save_tiny(tmp_path_factory.mktemp("page") / "model", seed=3, tasks=CELL_TYPES)
    url = start_service(ServiceArgs(model=str(model_dir), genome=str(FIXTURE_FASTA)))
    yield url, model_dir
    serve.shutdown()


@pytest.fixture
def browser(tmp_path):
    if not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1300"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path)})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(condition, timeout: float = 60.0, what: str = "the page", browser=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    seen = f"; status: {browser.find_element('id', 'status').text!r}, console: {browser.get_log('browser')}" \
        if browser is not None else ""
    raise AssertionError(f"timed out waiting for {what}{seen}")


def test_page_scores_two_variants_and_shows_the_wrong_ref(page_service, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, model_dir = page_service
    genome = Genome(FIXTURE_FASTA)
    ref1, ref2 = genome.fetch("20", 150_000, 150_001), genome.fetch("20", 150_036, 150_037)
    alt1, alt2 = ("G" if ref1 != "G" else "A"), ("T" if ref2 != "T" else "C")
    wrong = "C" if genome.fetch("20", 150_073, 150_074) != "C" else "G"
    # A VCF line (typed with spaces: a Tab key would leave the text box) and two chrom:pos:ref>alt.
    lines = [f"20 150001 rs_first {ref1} {alt1} . PASS .", f"20:150037:{ref2}>{alt2}",
             f"20:150074:{wrong}>A"]

    browser.get(url)
    wait_for(lambda: "cell types" in browser.find_element(By.ID, "model").text, what="the model line")
    browser.find_element(By.ID, "variants").send_keys("\n".join(lines))
    browser.find_element(By.ID, "submit").click()
    status = wait_for(lambda: "scored" in browser.find_element(By.ID, "status").text and
                      browser.find_element(By.ID, "status").text, what="the results",
                      browser=browser)
    assert status.startswith("2 scored, 1 rejected")

    scored = browser.find_elements(By.CSS_SELECTOR, "#scored tbody tr")
    rejected = browser.find_elements(By.CSS_SELECTOR, "#rejected tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in scored] == [
        f"20:150001 {ref1}>{alt1}", f"20:150037 {ref2}>{alt2}"]
    assert scored[0].find_elements(By.TAG_NAME, "td")[2].text == "rs_first"
    assert len(rejected) == 1 and "ref_mismatch" in rejected[0].text and f"20:150074 {wrong}>A" in rejected[0].text

    # The table shows the scorer's numbers: max |delta| and the strongest cell type first.
    expected = VariantScorer(str(model_dir), FIXTURE_FASTA).score_dataframe(pd.DataFrame(
        {"chrom": ["20", "20"], "pos": [150001, 150037], "ref": [ref1, ref2], "alt": [alt1, alt2]}))
    for row, (_, want) in zip(scored, expected.iterrows()):
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[4].text == f"{want['max_abs_delta']:.3f}"
        assert cells[5].text.startswith(want["max_task"])

    # A chart of all T cell types for the selected variant; clicking another row selects it.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")) == len(CELL_TYPES)
    assert "20:150001" in browser.find_element(By.ID, "chart-title").text
    scored[1].click()
    assert "20:150037" in browser.find_element(By.ID, "chart-title").text
    assert "selected" in scored[1].get_attribute("class")

    browser.find_element(By.ID, "download").click()
    tsv = wait_for(lambda: next(iter(tmp_path.glob("dnacnn_scores.tsv")), None), 30, "the TSV download")
    table = pd.read_csv(tsv, sep="\t")
    assert list(table["status"]) == ["scored", "scored", "rejected"]
    assert table.loc[2, "reason"] == "ref_mismatch"
    assert [c for c in table.columns if c.startswith("delta_")] == [f"delta_{t}" for t in CELL_TYPES]
    np.testing.assert_allclose(table.loc[0, [f"delta_{t}" for t in CELL_TYPES]].astype(float),
                               expected["delta"][0], atol=1e-5)

    shot = tmp_path / "serve_page.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("DNACNN_DOCS_SCREENSHOT") == "1":
        shutil.copy(shot, REPO / "docs" / "serve_page.png")

    # RC averaging chosen on the page: the table shows the RC scorer's numbers.
    browser.find_element(By.ID, "rc").click()
    browser.find_element(By.ID, "submit").click()
    wait_for(lambda: "RC averaging on" in browser.find_element(By.ID, "status").text, what="the RC results",
             browser=browser)
    rc = VariantScorer(str(model_dir), FIXTURE_FASTA, rc=True).score_dataframe(expected[["chrom", "pos", "ref", "alt"]])
    shown = [r.find_elements(By.TAG_NAME, "td")[4].text
             for r in browser.find_elements(By.CSS_SELECTOR, "#scored tbody tr")]
    assert shown == [f"{v:.3f}" for v in rc["max_abs_delta"]]


def test_a_line_at_pos_0_is_unparsed_and_the_others_are_scored(page_service, browser):
    """A pasted VCF line at POS 0 (a telomere; `dnacnn score` makes it one 'malformed' reject)
    was sent, and the service's 422 for pos 0 failed the whole submission."""
    from selenium.webdriver.common.by import By

    url, _ = page_service
    ref = Genome(FIXTURE_FASTA).fetch("20", 150_000, 150_001)
    lines = ["20 0 telomere N <DEL> . PASS .", f"20:150001:{ref}>{'G' if ref != 'G' else 'A'}", "20:0:N>A"]
    browser.get(url)
    wait_for(lambda: "cell types" in browser.find_element(By.ID, "model").text, what="the model line")
    browser.find_element(By.ID, "variants").send_keys("\n".join(lines))
    browser.find_element(By.ID, "submit").click()
    status = wait_for(lambda: "scored" in browser.find_element(By.ID, "status").text and
                      browser.find_element(By.ID, "status").text, what="the results", browser=browser)
    assert status.startswith("1 scored, 2 rejected"), status
    rejected = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#rejected tbody tr")]
    assert len(rejected) == 2 and all("unparsed" in r and "POS 1 .. 2^31-1" in r for r in rejected), rejected


def test_page_needs_nothing_from_the_network(page_service):
    import httpx

    html = httpx.get(page_service[0], timeout=30).text
    assert "<script src" not in html and "<link" not in html and "http://" not in html.replace(
        "http://www.w3.org/2000/svg", "")
    assert "https://" not in html


def test_the_api_docs_render_without_the_network(page_service, browser):
    """/docs is Swagger UI from files the service carries (FastAPI's own page loads it from a
    CDN, which a cluster without internet, and this test's browser, cannot reach: a blank page),
    and it shows the scoring endpoint; /redoc likewise."""
    import httpx
    from selenium.webdriver.common.by import By

    url = page_service[0].rstrip("/")
    for page in ("/docs", "/redoc"):
        html = httpx.get(url + page, timeout=30).text
        assert "cdn." not in html and "https://" not in html, html[:2000]
    browser.get(url + "/docs")
    title = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"),
                     what="Swagger UI's title")
    assert "dnacnn variant scoring" in title[0].text
    wait_for(lambda: "/v1/score" in browser.find_element(By.TAG_NAME, "body").text, what="the /v1/score operation")
