"""The memory estimate: latents from the cut shapes, a line through measured peaks."""

import pytest

from vinet_utils.method import latents as L
from vinet_utils.experiments import memory
from vinet_utils.common.results import write_json


def _run(folder, n_train, n_test, peaks):
    write_json(folder / "01_baseline.json", {
        "params": {"arch": "resnet18", "width": 1.0, "dataset": "cifar10"},
        "metrics": {"n_train": n_train, "n_test": n_test}})
    variants = ["tiny", "small", "medium", "large"]
    for stage, peak in zip(memory.STAGES, peaks):
        write_json(folder / f"{stage}.json", {"params": {"variants": variants},
                                              "peak_host_memory_gb": peak})
    return folder


def test_latents_of_a_width_one_resnet18_follow_from_its_cut_shapes():
    # tiny 128x16x16, small 256x8x8, medium and large 512x4x4, two bytes each
    per_image = 2 * (128 * 16 * 16 + 256 * 8 * 8 + 512 * 4 * 4 * 2)
    assert L.latent_bytes("resnet18", 1.0, ["tiny", "small", "medium", "large"], 10) == 10 * per_image


def test_the_full_size_peak_is_read_off_the_line_through_the_measured_runs(tmp_path):
    a = _run(tmp_path / "a", 1000, 200, [2.0, 1.5, 1.8, 2.5])
    b = _run(tmp_path / "b", 4000, 800, [3.0, 2.5, 3.2, 4.0])
    out = memory.summarize([b, a])
    gb = [r["latents_gb"] for r in out["runs"]]
    assert gb[1] == pytest.approx(4 * gb[0])
    full = 60_000 / 1200 * gb[0]
    expect = {s: y0 + (y1 - y0) / (gb[1] - gb[0]) * (full - gb[0])
              for s, y0, y1 in zip(memory.STAGES, [2.0, 1.5, 1.8, 2.5], [3.0, 2.5, 3.2, 4.0])}
    for s, v in expect.items():
        assert out["stages"][s]["full_peak_gb"] == pytest.approx(v)
    assert out["full_peak_gb"] == pytest.approx(max(expect.values()))
    assert out["largest_stage"] == max(expect, key=expect.get)
    with pytest.raises(SystemExit, match="at least two"):
        memory.summarize([a])
