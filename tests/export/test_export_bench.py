"""`export.benchmark`: one timing row per backend and batch size."""

import pytest

from export import benchmark
from keras_dpnp.exporting import export_model
from export_helpers import tiny_model


def test_time_calls_runs_at_least_the_minimum():
    calls = []
    durations = benchmark.time_calls(calls.append, "images", seconds=0.0, warmup=2)
    assert len(durations) == benchmark.MIN_CALLS and len(calls) == benchmark.MIN_CALLS + 2
    assert all(duration >= 0 for duration in durations)


def test_benchmark_times_every_backend(tmp_path):
    out = str(tmp_path / "export")
    export_model(tiny_model(), out)
    report = benchmark.run_benchmark(out, [1, 4], seconds=0.0, warmup=1)
    cells = {(row["backend"], row["batch_size"]) for row in report["results"]}
    assert cells == {(name, size) for name in ("keras", "saved_model", "onnxruntime")
                     for size in (1, 4)}
    for row in report["results"]:
        assert row["calls"] >= benchmark.MIN_CALLS
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["images_per_second"] == pytest.approx(
            row["batch_size"] * 1e3 / row["median_ms"], rel=10)
    table = benchmark.format_table(report)
    assert table.count("| onnxruntime |") == 2 and "8×8×1" in table
