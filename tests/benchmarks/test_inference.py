"""`keras_dpnp.benchmarks.inference`: one timing row per backend and batch size."""

import time

import pytest

from conftest import tiny_model
from keras_dpnp.benchmarks import inference
from keras_dpnp.exporting import ExportError, export_model


def test_time_calls_runs_at_least_the_minimum_and_times_each_call():
    calls = []

    def sleeper(images):
        calls.append(images)
        time.sleep(0.01)

    durations = inference.time_calls(sleeper, "images", seconds=0.0, warmup=2)
    assert len(durations) == inference.MIN_CALLS and len(calls) == inference.MIN_CALLS + 2
    assert all(0.01 <= duration < 1.0 for duration in durations)


def test_summarise_gives_latency_percentiles_and_throughput():
    row = inference.summarise("keras", 4, [0.4, 0.1, 0.3, 0.2])
    assert row == {
        "backend": "keras",
        "batch_size": 4,
        "calls": 4,
        "median_ms": pytest.approx(250.0),
        "p90_ms": pytest.approx(400.0),
        "images_per_second": pytest.approx(16.0),
    }


def test_benchmark_times_every_backend(tmp_path):
    out = str(tmp_path / "export")
    export_model(tiny_model(), out)
    report = inference.run_benchmark(out, [1, 4], seconds=0.0, warmup=1)
    cells = {(row["backend"], row["batch_size"]) for row in report["results"]}
    assert cells == {
        (name, size) for name in ("keras", "saved_model", "onnxruntime") for size in (1, 4)
    }
    for row in report["results"]:
        assert row["calls"] >= inference.MIN_CALLS
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["images_per_second"] > 0
    table = inference.format_table(report)
    assert table.count("| onnxruntime |") == 2 and "8×8×1" in table


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{not json", r"cannot read .*metadata\.json \(JSONDecodeError: "),
        (b'{"name": "\xff"}', r"cannot read .*metadata\.json \(UnicodeDecodeError: "),
        (b'{"artefacts": [], "source": "m"}', r"metadata\.json is not an export's metadata "),
        (b"[1, 2]", r"\(missing or malformed: artefacts, input, model, versions, source\)"),
    ],
    ids=["not_json", "not_utf8", "missing_parts", "not_an_object"],
)
def test_a_malformed_metadata_json_is_named(tmp_path, content, message):
    (tmp_path / "metadata.json").write_bytes(content)
    with pytest.raises(ExportError, match=message):
        inference.run_benchmark(str(tmp_path), [1], seconds=0.0)
