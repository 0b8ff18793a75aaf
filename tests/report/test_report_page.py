"""The report of a REAL sweep (xllamacpp on a generated model), read the way a person reads it:
rendered by the bench CLI at the end of the sweep, opened in headless Chromium, screenshotted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from report_browser import open_page

from bench.report import ReportError, render_report
from bench.report.modelbytes import read_model
from tests.sysdeps import ensure_binary

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MAX_BYTES = 2 * 1024 * 1024


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """`python -m bench sweep` on the tiny spec: 2 healthy configs + 1 failing launch, 2 repeats."""
    out = tmp_path_factory.mktemp("sweep") / "report-test"
    proc = _run("-m", "bench", "sweep", str(HERE / "tiny_sweep.toml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    index = out / "index.html"
    assert proc.stdout.strip().splitlines()[-1] == str(index), "the sweep must end by printing its page"
    assert index.is_file()
    return out


def _shoot(sweep: Path, tmp_path_factory, name: str, **kw):
    chromium = ensure_binary("chromium", "chromium")
    result = open_page(chromium, sweep / "index.html", tmp_path_factory.mktemp("chromium-profile"), **kw)
    (sweep / f"report-screenshot-{name}.png").write_bytes(result.screenshot)
    shots = os.environ.get("OMNI_REPORT_SHOTS")
    if shots:  # a person's copy to look at: a directory gets desktop.png and phone.png
        target = Path(shots) / f"{name}.png" if Path(shots).is_dir() else Path(shots).with_stem(
            f"{Path(shots).stem}-{name}")
        shutil.copy(sweep / f"report-screenshot-{name}.png", target)
    return result


@pytest.fixture(scope="module")
def page(sweep, tmp_path_factory):
    """The page as Chromium shows it on a desktop (screenshot kept: report-screenshot-desktop.png)."""
    return _shoot(sweep, tmp_path_factory, "desktop")


@pytest.fixture(scope="module")
def phone(sweep, tmp_path_factory):
    """The page on a 390 px wide phone (mobile emulation; report-screenshot-phone.png)."""
    return _shoot(sweep, tmp_path_factory, "phone", width=390, mobile=True, pdf=False)


def test_page_opens_offline_every_image_decodes_and_nothing_is_fetched(sweep, page):
    # rates, TTFT, ITL, throughput, per-user vs aggregate, memory, decode vs memory, time series
    assert len(page.images) == 8, page.images
    for img in page.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["width"] > 300, f"image drawn too small to read: {img}"
    page_url = (sweep / "index.html").resolve().as_uri()
    fetched = [u for u in page.requests if u != page_url and not u.startswith("data:")]
    assert fetched == [], f"the page made requests: {fetched}"
    assert page.console_errors == []
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(page.screenshot) > 50_000
    assert page.pdf.startswith(b"%PDF") and len(page.pdf) > 20_000, "the page must print"
    html = (sweep / "index.html").read_text()
    assert len(html.encode()) < MAX_BYTES
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?https?:|@import""", html)


def test_page_recommends_a_measured_config_with_its_exact_launch_command(sweep, page):
    rows = pd.read_csv(sweep / "results.csv", dtype=str, keep_default_na=False)
    ok = rows[rows["status"] == "ok"]
    assert "Recommended configuration" in page.text
    import html as html_lib

    pre = (sweep / "index.html").read_text().split('<pre id="launch-command">')[1].split("</pre>")[0]
    recommended = html_lib.unescape(pre).strip()
    assert "exactly as measured:" in page.text
    assert recommended in set(ok["launch_command"]), recommended
    for label in ("Decode speed", "Host memory headroom during inference", "Model loaded"):
        assert label in page.text
    # judged against this host's size (the reference box's 80 of 384 GiB share): a healthy small
    # machine shows no FAIL, and the page says which rule set the threshold
    assert "lowest MemAvailable" in page.text and "this host's" in page.text
    criteria = (sweep / "index.html").read_text().split('id="criteria"')[1].split("</table>")[0]
    assert 'class="fail"' not in criteria and criteria.count('class="pass">pass') == 3


def test_failed_launch_is_listed_with_its_reason_and_log_tail(sweep, page):
    failures = page.text.split("Failures")[1].split("Provenance")[0]
    assert "Failed configurations" in failures and "launch-failed" in failures and "no-such-flag" in failures
    html = (sweep / "index.html").read_text()
    table = html.split('id="failed-configs"')[1].split("</table>")[0]
    assert "unknown argument" in table and "--no-such-flag" in table  # the server's own words, in the table
    assert "last lines of the server log" in page.text


def test_provenance_shows_host_versions_and_spec(sweep, page):
    prov = page.text.split("Provenance")[1]
    for item in ("CPU", "NUMA nodes", "DIMMs", "GPUs", "GPU PCIe links", "xllamacpp", "gguf", "report-test"):
        assert item in prov, item
    facts = json.loads((sweep / "facts.json").read_text())
    assert facts["facts"]["cpu"]["model"] in prov


def test_ceiling_from_the_real_model_with_a_measured_bandwidth(sweep, tmp_path):
    """report.toml beside the results gives the bandwidth; the ceiling uses the GGUF's own bytes."""
    copy = tmp_path / "s"
    shutil.copytree(sweep, copy)
    (copy / "report.toml").write_text("[report]\nhost_bandwidth_gbps = 20\nmin_decode_tps = 5\nbogus = 1\n")
    html = render_report(copy).read_text()
    meta = json.loads((copy / "sweep.json").read_text())
    model = read_model(meta["model"])
    ceiling = 20e9 / model.bytes_per_token
    assert f"{ceiling:,.1f}" in html  # the ceiling of every CPU-only launch of this model
    assert "measured, given in the spec: 20 GB/s" in html
    assert "&gt; 5 tokens/s per request" in html
    assert "unknown key &#39;bogus&#39; ignored" in html


def test_rate_above_the_ceiling_is_a_measurement_error_not_a_record(sweep, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(sweep, copy)
    proc = _run("-m", "bench.report", str(copy), "--host-bandwidth-gbps", "0.001")
    assert proc.returncode == 0, proc.stderr
    html = (copy / "index.html").read_text()
    assert "above ceiling: measurement error" in html
    assert "No recommendation." in html and "above its physical ceiling" in html


def test_missing_columns_read_as_unknown(sweep, tmp_path):
    """An older sweep without memory columns or run files still renders; criteria say unknown."""
    copy = tmp_path / "s"
    shutil.copytree(sweep, copy)
    rows = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    gone = [c for c in rows.columns
            if "mem" in c or "headroom" in c or c.startswith(("host.", "ttft", "itl", "model_"))]
    rows.drop(columns=gone).to_csv(copy / "results.csv", index=False)
    for name in ("facts.json", "sweep.json"):
        (copy / name).unlink()
    shutil.rmtree(copy / "runs")
    html = render_report(copy).read_text()
    assert 'class="unknown">unknown' in html and "not measured" in html
    assert "Not drawn:" in html


def test_user_errors_are_one_line(tmp_path):
    proc = _run("-m", "bench.report", str(tmp_path / "absent"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a directory" in proc.stderr
    (tmp_path / "results.csv").write_text("config_id,status\nx,ok\n")
    (tmp_path / "report.toml").write_text("[report]\nmin_decode_tps = -3\n")
    with pytest.raises(ReportError, match="min_decode_tps"):
        render_report(tmp_path)
    (tmp_path / "report.toml").write_text("[report\n")
    proc = _run("-m", "bench.report", str(tmp_path))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr and "Traceback" not in proc.stderr


def _gpu_box(sweep: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The real sweep as a hybrid MoE launch on a GPU box would record it (CI has no GPU).

    Facts come from real captures (8x DDR5-4800 Threadripper PRO dmidecode, the H200's
    nvidia-smi -q); the model is a real generated Mixtral-style GGUF; two configurations become
    `-ngl 99 -ot exps=CPU` (experts in host RAM) and `-ngl 99` (all in HBM).
    """
    from bench.genmodel.shape import ModelShape
    from bench.genmodel.write import write_model
    from facts.parse import parse

    copy = tmp_path / "gpu-box"
    shutil.copytree(sweep, copy)
    for recorded in ("bandwidth.json", "model.json"):  # measured on this machine, not the GPU box
        (copy / recorded).unlink()
    model = write_model(ModelShape(n_embd=128, n_layer=4, n_ff=256, n_expert=8, n_expert_used=2),
                        tmp_path / "moe.gguf")
    hw = ROOT / "tests" / "fixtures" / "hw"
    facts = json.loads((copy / "facts.json").read_text())
    facts["facts"]["memory_modules"] = parse("dmidecode", (hw / (
        "dmidecode-t17-wrx90e-threadripper-pro-7985wx-ddr5-8x64gb-4800.txt")).read_text())
    facts["facts"]["nvidia_gpus"] = parse("nvidia-smi-q", (hw / "h200-nvidia-smi-q.txt").read_text())
    (copy / "facts.json").write_text(json.dumps(facts))
    rows = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    placement = {}
    for k, cid in enumerate(dict.fromkeys(rows["config_id"])):
        placement[cid] = ["-ngl", "99", "-ot", "exps=CPU"] if k == 0 else ["-ngl", "99"]
    argv = []
    for cid, old in zip(rows["config_id"], rows["launch_argv"], strict=True):
        base = json.loads(old)
        base[base.index("-m", 3) + 1] = str(model)
        argv.append(json.dumps(base + placement[cid]))
    rows["launch_argv"] = argv
    rows["gpu0_mem_peak_bytes"] = str(30 * 10**9)
    rows["gpu0_mem_total_bytes"] = str(143771 * 2**20)
    rows.to_csv(copy / "results.csv", index=False)
    for run in (copy / "runs").glob("*/r*/*.json"):
        doc = json.loads(run.read_text())
        for sample in doc.get("memory", []) + doc.get("load_samples", []):
            sample["gpu_used"] = [29 * 10**9]
        run.write_text(json.dumps(doc))
    return copy, model


def test_hybrid_gpu_box_ceiling_sums_host_and_hbm_time(sweep, tmp_path):
    from bench.report.ceiling import combine, gpu_bandwidth, host_bandwidth

    copy, model_file = _gpu_box(sweep, tmp_path)
    html = render_report(copy).read_text()
    assert "4800 MT/s x 8 channels x 8 B = 307.2 GB/s" in html
    assert "datasheet peak for NVIDIA H200: 4800 GB/s" in html
    model = read_model(model_file)
    embd_row = next(t.read_bytes for t in model.tensors if t.name == "token_embd.weight")
    experts = sum(t.read_bytes for t in model.tensors if t.routed_expert)
    host, hbm = host_bandwidth(dimm_mts=4800, channels=8), gpu_bandwidth("NVIDIA H200")
    hybrid = combine(embd_row + experts, [model.bytes_per_token - embd_row - experts], host, [hbm])
    all_gpu = combine(embd_row, [model.bytes_per_token - embd_row], host, [hbm])
    assert hybrid.tokens_per_s < all_gpu.tokens_per_s
    for c in (hybrid, all_gpu):
        assert f"{c.tokens_per_s:,.1f}" in html, c.formula()
    assert "exps=CPU" in html
    assert "2 of 8 experts used per token" in html


def test_memory_counts_the_servers_mapped_model(sweep, page):
    """The real server mmaps its GGUF: the rows and the configurations table show those pages."""
    rows = pd.read_csv(sweep / "results.csv")
    ok = rows[rows["status"] == "ok"]
    assert (ok["model_mapped_peak_bytes"] > 0).all()
    assert (ok["server_mem_peak_bytes"] >= ok["server_rss_peak_bytes"]).all()
    assert (ok["host_headroom_min_bytes"] <= ok["host_mem_available_min_bytes"]).all()
    configs = page.text.split("Configurations")[1].split("All result rows")[0]
    assert "server mem GB" in configs and "of it: mapped model GB" in configs and "page cache GB" in configs
    assert "less the mapped model" in page.text  # the headroom criterion says what it measured


def test_page_reads_on_a_390_px_phone(phone, page):
    """No sideways scrolling of the page itself (wide tables scroll inside their box), every plot
    fills the screen width and is shrunk by at most ~0.6, so its 12 pt text stays >= 9 px."""
    assert phone.scroll_width <= 390, phone.scroll_width
    for img in phone.images:
        assert 340 <= img["width"] <= 390, img
        assert img["width"] / img["naturalWidth"] >= 0.55, f"plot shrunk too far to read on a phone: {img}"
    for img in page.images:  # desktop: drawn at least at natural size, capped for a readable line length
        assert img["naturalWidth"] <= img["width"] <= 780, img


def test_plots_use_a_log_axis_when_rates_span_ten_times_and_keep_reference_lines_inside():
    """Real matplotlib axes from the plot helpers: CPU and GPU rates on one axis go log; a ceiling
    far right of every bar stays inside the limits (it used to be clipped by set_xlim(left=0))."""
    import matplotlib.pyplot as plt

    from bench.report.plots import fit_limits, wants_log

    assert wants_log([24.2, 510.0]) and not wants_log([24.2, 55.8, 29.9]) and not wants_log([5.0, None])
    fig, ax = plt.subplots()
    lo, hi = fit_limits(ax, [24.2, 510.0, 4260.0], "x", log=True)
    assert ax.get_xscale() == "log" and lo < 24.2 and hi > 4260.0
    lo, hi = fit_limits(ax, [20.0, 30.0, 79.0], "x", log=False)
    assert ax.get_xscale() == "linear" and lo == 0 and hi > 79.0
    plt.close(fig)


def test_the_sweep_dir_alone_renders_the_same_ceiling_on_another_machine(sweep, tmp_path):
    """The sweep recorded model.json and bandwidth.json: with the GGUF gone (another machine), a
    fresh `python -m bench report` shows the same ceilings, measured bandwidth and model facts."""
    bw = json.loads((sweep / "bandwidth.json").read_text())
    assert bw["host_read_gbps"] > 0 and (sweep / "model.json").is_file()
    original = (sweep / "index.html").read_text()
    copy = tmp_path / "elsewhere"
    shutil.copytree(sweep, copy)
    meta = json.loads((copy / "sweep.json").read_text())
    gone = "/nonexistent/models/" + Path(meta["model"]).name
    for name in ("sweep.json", "results.csv"):
        (copy / name).write_text((copy / name).read_text().replace(meta["model"], gone))
    proc = _run("-m", "bench", "report", str(copy))
    assert proc.returncode == 0, proc.stderr
    html = (copy / "index.html").read_text()
    assert "model.json in the sweep directory" in html and "not found" not in html.split('id="ceilings"')[1]
    assert f"measured at sweep start: {bw['host_read_gbps']:.1f} GB/s" in html
    ceilings = re.findall(r"= ([0-9,.]+) tok/s</code>", original)
    assert ceilings and re.findall(r"= ([0-9,.]+) tok/s</code>", html) == ceilings


def test_placement_section_reads_on_a_390_px_phone(tmp_path):
    """The committed placement sweep (8 rows, a folded tensor-group table each) on a phone: no
    sideways scrolling of the page; the tables scroll inside their box."""
    sweep = tmp_path / "placement"
    shutil.copytree(ROOT / "reports" / "examples" / "placement", sweep)
    render_report(sweep)
    chromium = ensure_binary("chromium", "chromium")
    phone = open_page(chromium, sweep / "index.html", tmp_path / "profile", width=390, mobile=True, pdf=False)
    assert phone.scroll_width <= 390, phone.scroll_width
    assert "Where each tensor group went" in phone.text and "free at start" in phone.text
