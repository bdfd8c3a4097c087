"""benchmarks/refine.py still runs, and writes only its own section of the benchmarks page."""

from __future__ import annotations

from pathlib import Path

from benchmarks import refine
from benchmarks.report import write_section
from benchmarks.tasks import TASKS


def test_one_seed_of_coarse_to_fine_on_hartmann6() -> None:
    result = refine.one_seed(TASKS["hartmann6"], seed=0, coarse=8, fine=3)
    assert result["coarse"] is not None and 1 <= result["coarse"] <= 8
    assert 2 <= result["warm_used"] <= 8  # the top 20% (at least 2) lie inside the refined box
    for stage in refine.STAGES:
        assert result[stage] is None or 1 <= result[stage] <= 3
        assert result[f"{stage}_best"] >= TASKS["hartmann6"].optimum - 1e-9
    lines = refine.section({"hartmann6": [result]}, seeds=1, coarse=8, fine=3, seconds=1.0)
    assert sum(line.startswith("| hartmann6 |") for line in lines) == 4


def test_write_section_keeps_the_other_sections(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n## Throughput\n\nfast\n\n## Refine: coarse to fine\n\nold\n")
    write_section(refine.HEADING, ["new"], page)
    write_section(refine.HEADING, ["newer"], page)
    assert page.read_text() == (
        "# Benchmarks\n\n## Throughput\n\nfast\n\n## Refine: coarse to fine\n\nnewer\n"
    )
