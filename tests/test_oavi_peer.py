"""Tests of the comparison with the authors' OAVI (vinet_utils.experiments.oavi_peer).

The run against the peer needs its source tree (github.com/elwirth/avi_at_scale, extracted
outside this repository) named by the ``VINET_OAVI_PEER`` environment variable; without
it (as in CI) that test is skipped. No test bounds a wall-clock time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vinet_utils.experiments import bench, oavi_peer
from vinet_utils.oavi import default_tau, pearson_order


def _peer_dir() -> Path:
    value = os.environ.get("VINET_OAVI_PEER")
    if not value:
        pytest.skip("VINET_OAVI_PEER is unset: no source tree of the authors' OAVI (avi_at_scale) to run")
    path = Path(value)
    if not (path / "src" / "feature_transformations" / "oracle_avi.py").is_file():
        pytest.skip(f"VINET_OAVI_PEER={value} holds no avi_at_scale source tree (src/feature_transformations)")
    return path


# ------------------------------------------------------------------- cases
@pytest.mark.parametrize("name, shape", [
    ("L64", (2000, 64)), ("L32", (2000, 32)), ("Z", (1000, 32)), ("L32_default_tau", (2000, 32)),
    ("ABM_L32", (2000, 32)), ("ABM_Z", (1000, 32)), ("tabular_9000x8_pearson", (9000, 8)),
])
def test_case_shapes_and_determinism(name, shape):
    make = oavi_peer.CASES[name][0]
    X = make()
    assert X.shape == shape and X.dtype == np.float64 and np.isfinite(X).all()
    np.testing.assert_array_equal(X, make())


def test_cases_are_the_issues():
    L64 = oavi_peer.CASES["L64"][0]()
    np.testing.assert_array_equal(oavi_peer.CASES["L32"][0](), L64[:, :32])
    rng = np.random.default_rng(7)
    W = rng.normal(size=(6, 64)) / np.sqrt(6)
    S = rng.normal(size=(2000, 6)) @ W
    np.testing.assert_array_equal(L64, np.tanh(S + 0.3 * np.sin(S)) + 0.02 * rng.normal(size=(2000, 64)))
    Z = oavi_peer.z_case()
    np.testing.assert_allclose(Z[:, 24:], Z[:, :8] ** 2, atol=0.01)  # up to the 1e-3 noise
    T = oavi_peer.CASES["tabular_9000x8_pearson"][0]()
    assert T.min() == 0.0 and T.max() == 1.0
    for name, (_, ours, _) in oavi_peer.CASES.items():
        assert ours["psi"] == 0.005
        if not name.startswith("tabular"):
            assert ours["max_degree"] == 3 and ours["ordering"] == "deglex"
            assert ours["tau"] == (None if name == "L32_default_tau" else 1000.0)
    assert oavi_peer.CASES["tabular_9000x8_pearson"][1]["ordering"] == "pearson"
    assert oavi_peer.CASES["L32_default_tau"][1]["tau"] == bench.CASES["L32_default_tau"][1]["tau"]


def test_peer_parameters():
    p = oavi_peer.peer_parameters(dict(psi=0.005, tau=None, max_degree=3, oracle="ihb", ordering="rev_pearson"))
    assert p["tau"] == default_tau(0.005) and p["max_degree"] == 3
    assert (p["oracle_type"], p["inverse_hessian_boost"], p["term_ordering_strategy"]) == ("CG", "full", "rev pearson")
    assert p["eps"] == pytest.approx(0.1)
    assert oavi_peer.peer_parameters(dict(psi=0.1, oracle="abm"))["oracle_type"] == "ABM"
    with pytest.raises(ValueError, match="finite tau"):
        oavi_peer.peer_parameters(dict(psi=0.1, tau=float("inf")))


def test_case_names():
    assert oavi_peer.case_names("all") == list(oavi_peer.CASES)
    assert oavi_peer.case_names("tiny,Z") == ["tiny", "Z"]
    with pytest.raises(SystemExit, match="unknown"):
        oavi_peer.case_names("L128")


# --------------------------------------------------------------- agreement
def test_decisions_agree_on_hand_made_results():
    ours = {"O": [[0, 0], [1, 0], [0, 1]], "G": [[2, 0], [1, 1], [0, 2]]}
    same = {"O": [[0, 1], [0, 0], [1, 0]], "G": [[0, 2], [2, 0], [1, 1]]}  # other order, same sets
    row = oavi_peer.decisions_agree(ours, same)
    assert row["decisions_agree"] and row["same_O"] and row["same_G_leading"]
    assert row["n_O"] == {"ours": 3, "peer": 3}
    other = {"O": [[0, 0], [1, 0], [0, 1], [0, 2]], "G": [[2, 0], [1, 1], [0, 3]]}
    row = oavi_peer.decisions_agree(ours, other)
    assert not row["decisions_agree"] and not row["same_O"] and not row["same_G_leading"]
    assert row["O_only_peer"] == [[0, 2]] and row["O_only_ours"] == []
    assert row["G_leading_only_ours"] == [[0, 2]] and row["G_leading_only_peer"] == [[0, 3]]


def test_check_peer_rejects_a_folder_without_the_peer(tmp_path):
    with pytest.raises(SystemExit, match="no src"):
        oavi_peer.check_peer(tmp_path)


# ------------------------------------------------------------ against the peer
@pytest.mark.parametrize("name", ["tiny", "tiny_pearson"])
def test_peer_run_on_a_tiny_case(name):
    peer = _peer_dir()
    make, ours, _ = oavi_peer.EXTRA_CASES[name]
    if name == "tiny_pearson":  # a true permutation, so that mapping the peer's variables back is tested
        assert pearson_order(make()).tolist() != [0, 1, 2, 3]
    row = oavi_peer.compare_case(peer, make(), ours, repeats=2, min_seconds=0.0)
    assert row["shape"] == [200, 4] and len(row["ours_fit_times_s"]) == len(row["peer_fit_times_s"]) == 2
    assert row["ratio_peer_over_ours"] == pytest.approx(row["peer_fit_time_s"] / row["ours_fit_time_s"])
    assert row["same_variable_order"] and not row["peer_switched_to_bpcg"]
    # the decisions have a clear margin on this data: both sides must make the same ones
    assert row["decisions_agree"], row
    # our time split: the degree loop's share of each fit, the rest outside it
    assert len(row["ours_loop_times_s"]) == 2 and row["ours_border_terms"] > 0
    assert all(0 < loop < t for loop, t in zip(row["ours_loop_times_s"], row["ours_fit_times_s"]))
    assert 0 < row["ours_outside_loop_s"] < row["ours_fit_time_s"]
    assert row["ours_page_faults_per_fit"] >= 0 and row["peer_page_faults_per_fit"] >= 0


def test_a_fast_case_is_timed_over_more_fits_on_both_sides():
    """Ours fits until its fits add up to min_seconds; the peer then fits as often."""
    peer = _peer_dir()
    make, ours, _ = oavi_peer.EXTRA_CASES["tiny"]
    row = oavi_peer.compare_case(peer, make(), ours, repeats=2, min_seconds=0.2)
    n = len(row["ours_fit_times_s"])
    assert row["repeats"] == n == len(row["peer_fit_times_s"]) > 2
    assert sum(row["ours_fit_times_s"]) >= 0.2 or n == oavi_peer.MAX_REPEATS
    assert sum(row["ours_fit_times_s"][:-1]) < 0.2  # it stopped at the first fit past the mark


def test_bench_cli_writes_a_peer_section(tmp_path):
    peer = _peer_dir()
    out = tmp_path / "oavi.json"
    bench.main(["oavi", "--classes", "1", "--points", "60", "--dim", "3", "--latent-dim", "1", "--max-degree", "2",
                "--no-reference", "--cases", "none", "--repeats", "1", "--peer", str(peer), "--peer-cases", "tiny",
                "--out", str(out)])
    section = json.loads(out.read_text())["peer"]
    assert set(section["cases"]) == {"tiny"} and section["commit"]
    assert section["cases"]["tiny"]["decisions_agree"]


def test_a_results_file_never_records_the_peers_folder():
    """The peer's folder is a path of the machine that ran the benchmark; the recorded command
    shows a placeholder in its place, in either spelling of the option."""
    from vinet_utils.common.results import public_arguments

    argv = ["--threads", "2", "oavi", "--peer", "/somewhere/avi", "--repeats", "3"]
    assert public_arguments(argv) == ["--threads", "2", "oavi", "--peer", "<avi_at_scale folder>",
                                                     "--repeats", "3"]
    assert public_arguments(["oavi", "--peer=/x/y"]) == ["oavi", "--peer=<avi_at_scale folder>"]


def test_the_time_split_divides_each_sides_time_by_the_border_terms():
    """The docs' table of where our time goes: the loop's share per border term, the
    authors' whole fit per border term, and a tenth of the authors' time."""
    from vinet_utils.report.oavi_page import time_split

    case = dict(ours_fit_time_s=0.002, ours_outside_loop_s=0.0005, ours_border_terms=30, peer_fit_time_s=0.009)
    lines = time_split({"cases": {"small": case, "large": dict(case, ours_border_terms=60)}}, ["small"])
    row = [line for line in lines if line.startswith("| small |")]
    assert len(row) == 1 and not any(line.startswith("| large |") for line in lines)
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    loop_per_term = (case["ours_fit_time_s"] - case["ours_outside_loop_s"]) / 30
    assert cells[3] == f"{loop_per_term * 1e6:.0f} µs" and cells[4] == f"{0.009 / 30 * 1e6:.0f} µs"
    assert cells[5] == "0.9 ms" and cells[6] == "30"
    # a record made before the split was recorded has no split to show
    assert time_split({"cases": {"small": {"ours_fit_time_s": 0.002}}}, ["small"]) == []


def test_the_readme_sentence_counts_the_cases_at_ten_times(tmp_path):
    """README's OAVI sentence: the cases at 10x or more and those under it, from the file."""
    from vinet_utils.report.oavi_page import oavi_summary

    case = lambda ratio, agree=True: {"ratio_peer_over_ours": ratio, "decisions_agree": agree}
    rec = {"metadata": {"device_name": "cpu (2 cores)", "git_commit": "abcdef0123"},
           "peer": {"cases": {"A": case(12.0), "B": case(9.96), "C": case(100.0, agree=False),
                              "D": {"ratio_peer_over_ours": None, "decisions_agree": None}}}}
    path = tmp_path / "oavi.json"
    path.write_text(json.dumps(rec))
    text = oavi_summary(path)
    assert "2 of 3 cases at least 10x faster (A 12.0x, C 100.0x); under it: B 9.9x." in text
    assert "every case but C" in text and "`abcdef0`" in text
    path.write_text(json.dumps({k: v for k, v in rec.items() if k != "peer"}))
    assert "No comparison" in oavi_summary(path)
