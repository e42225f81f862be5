import json
import math

import pytest

from labkit.report import compare_with_reference, delta_table, load_reference


def test_delta_table_hand_case():
    results = {
        "stride": {"train": 0.90, "test": 0.85},
        "base": {"train": 0.95, "test": 0.91},
        "no skip": {"train": 0.96, "test": 0.88},
    }
    t = delta_table(results, base="base")
    assert t.columns == ["run", "train", "test"]
    assert t.rows[0][0] == "base (absolute)" and t.rows[0][1:] == pytest.approx([95.0, 91.0])
    rows = {r[0]: r[1:] for r in t.rows}
    assert rows["stride (delta)"] == pytest.approx([-5.0, -6.0])
    assert rows["no skip (delta)"] == pytest.approx([1.0, -3.0])
    md = t.to_markdown()
    assert "| base (absolute) | 95.00 | 91.00 |" in md
    assert "| stride (delta) | -5.00 | -6.00 |" in md
    assert "| no skip (delta) | +1.00 | -3.00 |" in md
    assert "<table>" in t._repr_html_()


def test_delta_table_missing_base_and_metric():
    with pytest.raises(KeyError, match="base run 'x'"):
        delta_table({"a": {"m": 1.0}}, base="x")
    t = delta_table({"a": {"m": 1.0}, "b": {}}, base="a", metrics=["m"], scale=1.0)
    assert math.isnan(t.rows[1][1])
    assert "n/a" in str(t)


def test_compare_with_reference(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"results": {"test accuracy": {"value": 0.9, "setting": "CPU"}}}))
    ref = load_reference(path)
    t = compare_with_reference({"test accuracy": 0.8}, ref)
    assert t.rows == [["test accuracy", 0.8, 0.9, "CPU"]]
    t = compare_with_reference({}, ref)
    assert math.isnan(t.rows[0][1])


def test_save_results_roundtrip(tmp_path):
    from labkit import __version__
    from labkit.report import save_results

    path = save_results(tmp_path / "r.json", {"acc": 0.5}, setting="CPU, 1 epoch")
    data = json.loads(path.read_text())
    assert data["labkit_version"] == __version__
    assert load_reference(path) == {"acc": {"value": 0.5, "setting": "CPU, 1 epoch"}}
