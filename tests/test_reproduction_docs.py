"""docs/experiments/reproduction.csv and the docs generated from it (no training)."""

import csv
import shutil
from pathlib import Path

import pytest

from sklearn_cnn.experiments import list_experiments
from sklearn_cnn.experiments import reproduction as rp

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments"
CSV = DOCS / "reproduction.csv"


@pytest.fixture(scope="module")
def rows():
    return rp.read_rows(CSV)


def test_exact_columns():
    with open(CSV, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["experiment", "report", "quantity", "report_value", "ours",
                      "settings_match", "note"]
    assert rp.COLUMNS == header


@pytest.mark.parametrize("line", [
    "report_networks,001,x train accuracy,0.9,0.9,false,on the 45,000 training images",
    "report_networks,001,x train accuracy,0.9,0.9,false",
])
def test_a_row_with_too_many_or_too_few_fields_is_an_error(tmp_path, line):
    """An unquoted comma in a note would cut it short (csv files the rest under the key
    None); a missing field would leave a cell None. Both name the line."""
    path = tmp_path / "reproduction.csv"
    path.write_text(",".join(rp.COLUMNS) + "\n" + line + "\n")
    with pytest.raises(ValueError, match="line 2: expected 7 fields"):
        rp.read_rows(path)


def test_values_are_fractions(rows):
    for r in rows:
        assert 0.0 <= float(r["report_value"]) <= 1.0, r
        if r["ours"]:
            assert 0.0 <= float(r["ours"]) <= 1.0, r
        assert r["settings_match"] in ("true", "false"), r
        assert r["quantity"].strip() and r["note"].strip(), r


def test_experiments_are_registered(rows):
    registered = set(list_experiments()["name"])
    assert {r["experiment"] for r in rows} <= registered


def test_every_report_has_rows(rows):
    assert {r["report"] for r in rows} == {"000", "001", "002", "003", "004"}


def test_rows_are_unique(rows):
    keys = [(r["experiment"], r["report"], r["quantity"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_report_003_rows_say_top5(rows):
    nets = [r for r in rows if r["report"] == "003" and r["experiment"] == "report_networks"]
    assert nets and all("top-5" in r["quantity"] for r in nets)


def test_committed_docs_are_up_to_date(tmp_path):
    copy = tmp_path / "experiments"
    shutil.copytree(DOCS, copy)
    assert rp.regenerate(copy) == []
    for path in DOCS.iterdir():
        if path.is_file():
            assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


def test_generated_numbers_appear_in_the_docs(rows):
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for r in rows:
        page = (DOCS / f"{r['experiment']}.md").read_text(encoding="utf-8")
        assert f"| {r['report_value']} ({r['report']}) | {r['ours'] or '–'} |" in page, r
        assert r["report_value"] in index
    assert "/work/" not in index


def test_replace_block_creates_then_is_idempotent():
    page = "# t\n\n## What it does\n\ntext\n\n## Command\n\nrun\n"
    once = rp.replace_block(page, "body\n", "## Report vs ours")
    assert once.index("## What it does") < once.index("## Report vs ours") \
        < once.index("## Command")
    assert f"{rp.BEGIN}\nbody\n{rp.END}\n" in once
    assert rp.replace_block(once, "body\n", "## Report vs ours") == once
    changed = rp.replace_block(once, "new\n", "## Report vs ours")
    assert "new\n" in changed and "body\n" not in changed
    assert changed.count("## Report vs ours") == 1


def test_replace_block_uses_an_existing_heading():
    page = "# t\n\n## What it does\n\nx\n\n## Report vs ours\n\nprose\n"
    out = rp.replace_block(page, "body\n", "## Report vs ours")
    assert out.count("## Report vs ours") == 1
    assert out.index(rp.BEGIN) < out.index("prose")
