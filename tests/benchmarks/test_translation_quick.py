"""benchmarks/translation.py in miniature: it runs every entry end to end and compares
like with like (the same number of stream events); never a timing assertion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.translation import ENTRIES, main


@pytest.mark.parametrize("upstream", ["replay", "in-process"])
async def test_every_codec_is_measured_against_native(tmp_path: Path, upstream: str) -> None:
    out = tmp_path / "translation.json"
    await main(["--quick", "--scale", "0.05", "--rounds", "1", "--json", str(out),
                "--upstream", upstream])
    rows = json.loads(out.read_text())["rows"]
    assert [row["codec"] for row in rows] == [
        name for entry in ENTRIES for name in (entry.name, f"{entry.name}, kept")]
    assert [row["kept"] for row in rows] == [False, True] * len(ENTRIES)
    for row in rows:
        assert row["codec_events"] == row["native_events"] > 0
        assert row["codec_long_events"] > row["codec_events"]  # a slope needs two lengths
        assert row["native_long_events"] > row["native_events"]
        assert (len(row["added_request_us_rounds"]) == len(row["added_event_us_rounds"])
                == len(row["marginal_event_us_rounds"]) == 1)
