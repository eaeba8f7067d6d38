"""benchmarks/translation.py in miniature: it runs every entry end to end and compares
like with like (the same number of stream events); never a timing assertion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.translation import CONTROL, ENTRIES, NATIVE, main


@pytest.mark.parametrize("upstream", ["replay", "in-process"])
async def test_every_codec_is_measured_against_native(tmp_path: Path, upstream: str) -> None:
    out = tmp_path / "translation.json"
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    await main(["--quick", "--scale", "0.05", "--rounds", "1", "--json", str(out),
                "--upstream", upstream])
    if cpus is not None:  # loopback pins this process to one CPU while it measures
        assert os.sched_getaffinity(0) == cpus
    rows = json.loads(out.read_text())["rows"]
    assert [row["codec"] for row in rows] == [
        f"{NATIVE.name}, kept", CONTROL.name,
        *(name for entry in ENTRIES for name in (entry.name, f"{entry.name}, kept"))]
    assert [row["kept"] for row in rows] == [True, False] + [False, True] * len(ENTRIES)
    # a kept codec is measured against native kept, the others against native, each
    # batch paired with one of its baseline's
    assert [row["baseline"] for row in rows] == [
        NATIVE.name if not row["kept"] or row["codec"] == f"{NATIVE.name}, kept"
        else f"{NATIVE.name}, kept" for row in rows]
    for row in rows:
        for mode, rounds in row["codec_cpu_us"].items():
            assert [len(batches) for batches in rounds] == [
                len(batches) for batches in row["native_cpu_us"][mode]]
    for row in rows:
        assert row["codec_events"] == row["native_events"] > 0
        assert row["codec_long_events"] > row["codec_events"]  # a slope needs two lengths
        assert row["native_long_events"] > row["native_events"]
        assert (len(row["added_request_us_rounds"]) == len(row["added_event_us_rounds"])
                == len(row["marginal_event_us_rounds"]) == 1)
