"""The reproduction table: report numbers next to ours, and the docs generated from it.

``docs/experiments/reproduction.csv`` has one row per number the reference reports
state (and per experiment reproducing it), with the columns :data:`COLUMNS`:

- ``experiment``: the registered experiment that reproduces the number;
- ``report``: the report file's three-digit prefix ("000" .. "004");
- ``quantity``: what the number is;
- ``report_value`` and ``ours``: fractions (``ours`` empty while not recorded);
- ``settings_match``: "true" only when every setting the report states is used;
- ``note``: what differs, with the measured evidence.

The experiments index (``README.md``, its table under ``## Index``) and the
``## Report vs ours`` section of every experiment page are rendered from it,
between :data:`BEGIN` and :data:`END`. Rewrite them with::

    python -m sklearn_cnn.experiments.reproduction [DOCS_EXPERIMENTS_DIR]
"""

import csv
import sys
from pathlib import Path

__all__ = ["COLUMNS", "BEGIN", "END", "read_rows", "render_index", "render_section",
           "replace_block", "regenerate"]

COLUMNS = ["experiment", "report", "quantity", "report_value", "ours", "settings_match",
           "note"]
BEGIN = "<!-- generated from reproduction.csv: do not edit -->"
END = "<!-- end generated -->"
CSV_NAME = "reproduction.csv"
#: docs/experiments of the source tree this module is in.
DOCS = Path(__file__).resolve().parents[2] / "docs" / "experiments"

#: Index rows in this order: experiment -> (first cell, what the experiment measures).
INDEX = {
    "layer_probes": ("[layer_probes](layer_probes.md) (and `sklearn-cnn probe`)",
                     "000, task 1: linear probe on flatten / fc1 / fc2 of the two-conv "
                     "CIFAR-10 net, without / with L2 on the fc layers"),
    "siamese_cifar10": ("[siamese_cifar10](siamese_cifar10.md)",
                        "000, task 2: contrastive-loss siamese net on CIFAR-10; test pair "
                        "loss, LinearSVC on the embedding"),
    "siamese_digits": ("[siamese_digits](siamese_digits.md)",
                       "000, task 2, same run on the embedded digits"),
    "siamese_mnist": ("[siamese_mnist](siamese_mnist.md)", "000, task 2, same run on MNIST"),
    "transfer_strategies": ("[transfer_strategies](transfer_strategies.md)",
                            "000, task 3: frozen backbone vs retrain vs refine after k steps "
                            "vs later stages only (and 002, 2c: retrain with L2)"),
    "transfer_last_layer": ("[transfer_last_layer](transfer_last_layer.md)",
                            "002, 2a: only a new last layer on a frozen pretrained net, 100 / "
                            "1,000 / 10,000 images (and 003, 3.1: the same on Caltech-256)"),
    "knn_k_sweep": ("[knn_k_sweep](knn_k_sweep.md)",
                    "002, 2b: KNN on pretrained penultimate features, k = 1..40"),
    "pretrained_layer_probes": ("[pretrained_layer_probes](pretrained_layer_probes.md)",
                                "003 (4.2): accuracy vs depth of a pretrained net; here "
                                "LinearSVC per stage"),
    "truncated_backbones": ("[truncated_backbones](truncated_backbones.md)",
                            "003 (4.2): backbone cut after successive blocks + fc(1000) head"),
    "report_networks": ("[report_networks](report_networks.md)",
                        "001-004: every network of the reports with the report's training "
                        "settings"),
    "filter_stride_sweep": ("[filter_stride_sweep](filter_stride_sweep.md)",
                            "004: kernel size × stride of every conv layer, MNIST and CIFAR-10"),
    "l2_selected_layers": ("[l2_selected_layers](l2_selected_layers.md)",
                           "004: L2 on all layers vs on conv1, conv3, fc1 only (CIFAR-10); L2 on "
                           "all layers of the MNIST net"),
}


def read_rows(path=None):
    """The rows of ``reproduction.csv`` (default: the source tree's) as dicts of strings."""
    path = Path(path) if path is not None else DOCS / CSV_NAME
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise ValueError(f"{path}: columns must be {COLUMNS}, got {reader.fieldnames}")
        rows = []
        for row in reader:
            # A field with an unquoted comma makes one field too many: csv files the rest
            # under the key None and the note reads cut short. An error, not a silent cut.
            if None in row or None in row.values():
                raise ValueError(f"{path}, line {reader.line_num}: expected "
                                 f"{len(COLUMNS)} fields ({', '.join(COLUMNS)}); quote a "
                                 "field that holds a comma")
            rows.append(row)
        return rows


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def _experiments(rows):
    names = {r["experiment"] for r in rows}
    return [n for n in INDEX if n in names] + sorted(names - set(INDEX))


def _reports(rows):
    return sorted({r["report"] for r in rows})


def render_section(rows, experiment):
    """Markdown of ``experiment``'s rows (quantity, report, ours, settings match, note)."""
    mine = [r for r in rows if r["experiment"] == experiment]
    lines = [f"Rows of [{CSV_NAME}]({CSV_NAME}) for `{experiment}`, generated by "
             "`python -m sklearn_cnn.experiments.reproduction`. Values are fractions; "
             "\"report\" gives the report file's number in brackets; \"settings match\" is yes "
             "only when every setting the report states (network, optimiser, L2 convention, "
             "steps or epochs, probe, data) is used.",
             "",
             "| quantity | report | ours | settings match | note |",
             "| --- | ---: | ---: | --- | --- |"]
    for r in mine:
        lines.append(f"| {_cell(r['quantity'])} | {r['report_value']} ({r['report']}) | "
                     f"{r['ours'] or '–'} | "
                     f"{'yes' if r['settings_match'] == 'true' else 'no'} | "
                     f"{_cell(r['note'])} |")
    if not mine:
        lines.append("| (no row) | | | | |")
    return "\n".join(lines) + "\n"


def render_index(rows):
    """The index table: one row per experiment, numbers from the CSV."""
    lines = ["| experiment | reference report & what it measures | report's number(s) | "
             "ours (full run; in the same order) | status |",
             "| --- | --- | --- | --- | --- |"]
    for name in _experiments(rows):
        mine = [r for r in rows if r["experiment"] == name]
        first, what = INDEX.get(name, (f"[{name}]({name}.md)", ", ".join(_reports(mine))))
        several = len(_reports(mine)) > 1
        tag = (lambda r: f" ({r['report']})") if several else (lambda r: "")
        report = "; ".join(f"{r['quantity']}{tag(r)} {r['report_value']}" for r in mine)
        done = [r for r in mine if r["ours"]]
        ours = "; ".join(r["ours"] or "–" for r in mine)
        match = sum(r["settings_match"] == "true" for r in mine)
        status = (f"{len(done)} of {len(mine)} numbers recorded, {match} at the report's "
                  "settings")
        lines.append(" | ".join(["", first, _cell(what), _cell(report), _cell(ours),
                                 status, ""]).strip())
    return "\n".join(lines) + "\n"


def replace_block(text, body, heading):
    """``text`` with ``body`` between the markers (idempotent).

    Without markers, the block goes right after the line ``heading``; without that
    heading, a new section ``heading`` goes before the page's second ``## `` section
    (after its first one), or at the end.
    """
    block = f"{BEGIN}\n{body}{END}\n"
    if BEGIN in text:
        start = text.index(BEGIN)
        end = text.index(END, start) + len(END)
        if text[end:end + 1] == "\n":
            end += 1
        return text[:start] + block + text[end:]
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.rstrip("\n") == heading:
            rest = "".join(lines[i + 1:]).lstrip("\n")
            return "".join(lines[:i + 1]) + "\n" + block + "\n" + rest
    sections = [i for i, line in enumerate(lines) if line.startswith("## ")]
    new = f"{heading}\n\n{block}\n"
    if len(sections) >= 2:
        at = sections[1]
        return "".join(lines[:at]) + new + "".join(lines[at:])
    return text.rstrip("\n") + "\n\n" + new


def regenerate(docs_dir=None):
    """Rewrite the index and every experiment page of ``docs_dir`` from its CSV.

    Returns the paths whose content changed (nothing changes when they are up to date).
    """
    docs_dir = Path(docs_dir) if docs_dir is not None else DOCS
    rows = read_rows(docs_dir / CSV_NAME)
    targets = [(docs_dir / "README.md", render_index(rows), "## Index")]
    for name in _experiments(rows):
        page = docs_dir / f"{name}.md"
        if not page.exists():
            raise FileNotFoundError(f"{page}: no page for experiment {name!r} of {CSV_NAME}")
        targets.append((page, render_section(rows, name), "## Report vs ours"))
    changed = []
    for path, body, heading in targets:
        old = path.read_text(encoding="utf-8")
        new = replace_block(old, body, heading)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    changed = regenerate(argv[0] if argv else None)
    for path in changed:
        print(f"rewrote {path}")
    if not changed:
        print("docs up to date")


if __name__ == "__main__":
    main()
