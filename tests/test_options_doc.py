"""docs/options.md lists exactly the config keys, with the types and defaults of seq2seq/config.py."""

import os

from seq2seq.config_doc import option_rows

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "options.md")


def doc_rows():
    rows = {}
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip().strip("|").replace("\\|", "\0").split("|")]
                key, type_, default, meaning = (c.replace("\0", "\\|") for c in cells)
                assert key.strip("`") not in rows, f"{key} listed twice"
                rows[key.strip("`")] = (type_, default, meaning)
    return rows


def test_every_config_key_is_documented_with_its_type_and_default():
    documented = doc_rows()
    expected = {key: (type_, default) for key, type_, default in option_rows()}
    assert sorted(set(expected) - set(documented)) == [], "keys missing from docs/options.md"
    assert sorted(set(documented) - set(expected)) == [], "docs/options.md lists keys the config lacks"
    for key, (type_, default) in expected.items():
        assert documented[key][:2] == (type_, default), key
        assert len(documented[key][2]) > 10, f"{key}: no meaning given"


def test_option_rows_spelling():
    rows = {key: (type_, default) for key, type_, default in option_rows()}
    assert rows["train.tbptt_steps"] == ("int or null", "`null`")
    assert rows["model.decoder.cell"] == ("`simple` \\| `gru` \\| `lstm` \\| `peephole_lstm`", "`gru`")
    assert rows["tokenizer.shared"] == ("bool", "`false`")
    assert rows["model.encoder.trainable"] == ("any", "`false`")
