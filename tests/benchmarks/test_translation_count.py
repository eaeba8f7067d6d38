"""benchmarks/translation_count.py: the measured process runs, and callgrind's total is
read; the valgrind runs themselves are the benchmark's, not the suite's."""

from __future__ import annotations

import pytest

from benchmarks import translation_count


@pytest.mark.parametrize("name", [translation_count.NATIVE, "bedrock"])
async def test_the_measured_process_sends_plain_requests(name: str) -> None:
    assert await translation_count.drive(name, 3) == 3


async def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(SystemExit, match="no codec named 'nope'"):
        await translation_count.drive("nope", 1)


def test_callgrind_total_is_read_from_its_last_line() -> None:
    stderr = "==41== Events    : Ir\n==41== Collected : 4107401893\n==41==\n"
    assert translation_count.collected(stderr) == 4_107_401_893
    with pytest.raises(RuntimeError, match="no instruction total"):
        translation_count.collected("valgrind: command not found")
