"""Model folders' config files: read only as regular, size-capped JSON objects without
duplicate keys; every key a loader reads is checked against its declared rule and every
computation-changing key it does not implement is refused (GT0909 naming the key). The
declared lists are walked key by key on real loaders, the refused keys are shown to change
transformers' numbers where transformers still honours them, and docs/models.md lists exactly
the declared keys."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gtdsl.models import config as cfgmod
from gtdsl.models.config import (
    BERT_KEYS, DERIVED, GPT2_KEYS, MODELS, REQUIRED, ROBERTA_KEYS, T5_KEYS, ModelKeys, read_config,
    read_json_object,
)
from gtdsl.models.weights import ModelLoadError
from tests.conftest import REPO
from tests.unit.models.hf import save_folder


# --------------------------------------------------------------------------- folders
def bert_model(seed: int = 0, **overrides: Any) -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=97, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=40, max_position_embeddings=32, **overrides)
    return BertModel(cfg).eval()


def roberta_model(seed: int = 0, **overrides: Any) -> Any:
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=40, max_position_embeddings=40,
                        type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5, **overrides)
    return RobertaModel(cfg).eval()


def gpt2_model(seed: int = 0, **overrides: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=61, n_positions=40, n_embd=24, n_layer=2, n_head=3,
                     initializer_range=0.3, bos_token_id=0, eos_token_id=0, **overrides)
    return GPT2LMHeadModel(cfg).eval()


def t5_model(seed: int = 0, **overrides: Any) -> Any:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=53, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=3,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **overrides)
    return T5ForConditionalGeneration(cfg).eval()


def loader(family: str) -> Callable[[Path], Any]:
    from gtdsl.models.bert import Bert, Roberta
    from gtdsl.models.gpt2 import GPT2
    from gtdsl.models.t5 import T5

    return {"BERT": Bert, "RoBERTa": Roberta, "GPT-2": GPT2, "T5": T5}[family]


MODEL_OF = {"BERT": bert_model, "RoBERTa": roberta_model, "GPT-2": gpt2_model, "T5": t5_model}
KEYS_OF = {"BERT": BERT_KEYS, "RoBERTa": ROBERTA_KEYS, "GPT-2": GPT2_KEYS, "T5": T5_KEYS}
FAMILIES = list(KEYS_OF)


def make_folder(family: str, folder: Path, seed: int = 0, **overrides: Any) -> Path:
    """A random transformers model of ``family`` saved as a Hugging Face folder."""
    return save_folder(MODEL_OF[family](seed, **overrides), folder)


def edit_config(folder: Path, change: Callable[[dict], Any] | None = None,
                text: str | None = None) -> None:
    """Rewrite ``folder/config.json``: ``change`` edits the dict in place, or ``text``
    replaces the file."""
    path = folder / "config.json"
    if text is None:
        data = json.loads(path.read_text())
        change(data)
        text = json.dumps(data)
    path.write_text(text)


def refusal(family: str, folder: Path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as err:
        loader(family)(folder)
    return err.value


def assert_names(err: ModelLoadError, key: str, file: str = "config.json") -> None:
    d = err.diagnostics[0]
    assert d.code == "GT0909", str(err)
    assert f"`{key}`" in d.message, d.message
    assert f"key: `{key}`" in d.notes, d.notes
    assert d.path is not None and d.path.endswith(file), d.path
    assert "Traceback" not in str(err)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {f: make_folder(f, tmp_path_factory.mktemp(f.replace("-", "")))
            for f in FAMILIES}


def fresh(folders: dict[str, Path], family: str, tmp_path: Path) -> Path:
    """A copy of the family's folder to edit (the weights linked, not copied)."""
    out = tmp_path / family.replace("-", "")
    out.mkdir(parents=True)
    (out / "config.json").write_text((folders[family] / "config.json").read_text())
    os.symlink(folders[family] / "model.safetensors", out / "model.safetensors")
    return out


# --------------------------------------------------------------------------- the file
@pytest.mark.parametrize("text,kind", [("[1, 2]", "a list"), ("null", "`null`"),
                                       ("3", "a number"), ('"bert"', "a string"),
                                       ("true", "a boolean")])
def test_a_config_that_is_not_an_object_is_refused(tmp_path: Path, text: str,
                                                   kind: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ModelLoadError) as err:
        read_config(tmp_path, BERT_KEYS)
    assert f"holds {kind}; it must hold a JSON object" in str(err.value)
    assert err.value.diagnostics[0].path == str(tmp_path / "config.json")


def test_duplicate_keys_are_refused_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 24, "num_attention_heads": 3, "hidden_size": 48}')
    with pytest.raises(ModelLoadError) as err:
        read_json_object(path)
    assert_names(err.value, "hidden_size")
    path.write_text('{"id2label": {"0": "a", "0": "b"}}')
    with pytest.raises(ModelLoadError, match="the key `0` more than once"):
        read_json_object(path)


@pytest.mark.parametrize("text,message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"vocab_size": ' + "9" * 5000 + "}", "not valid JSON"),
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
])
def test_malformed_json_is_a_diagnostic(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ModelLoadError, match=message):
        read_json_object(path)


def test_non_utf8_is_a_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ModelLoadError, match="not UTF-8"):
        read_json_object(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.json")  # nothing ever writes: reading it would hang
    with pytest.raises(ModelLoadError, match="not a regular file"):
        read_config(tmp_path, BERT_KEYS)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "config.json")
    with pytest.raises(ModelLoadError, match="not a regular file"):
        read_config(tmp_path, BERT_KEYS)


def test_a_directory_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="has no `config.json`"):
        read_config(tmp_path, BERT_KEYS)
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ModelLoadError, match="not a regular file|cannot read"):
        read_config(tmp_path, BERT_KEYS)


def test_a_file_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with open(path, "wb") as f:  # sparse: 8 GiB on paper, nothing on disk
        f.truncate(8 * 2**30)
    with pytest.raises(ModelLoadError, match=f"read up to {cfgmod.MAX_JSON_BYTES} bytes"):
        read_json_object(path)


# --------------------------------------------------------------------------- the lists
def _bad_values(keys: ModelKeys) -> list[tuple[str, Any]]:
    return [(key, bad) for key, spec in keys.read.items() for bad in spec.rule.bad]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_read_key_refuses_its_bad_values(folders: dict[str, Path], tmp_path: Path,
                                               family: str) -> None:
    folder = fresh(folders, family, tmp_path)
    original = (folder / "config.json").read_text()
    cases = _bad_values(KEYS_OF[family])
    assert len(cases) >= 5 * len(KEYS_OF[family].read) // 2
    for key, bad in cases:
        (folder / "config.json").write_text(original)
        edit_config(folder, lambda c: c.__setitem__(key, bad))
        assert_names(refusal(family, folder), key)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_required_key_is_named_when_missing(folders: dict[str, Path], tmp_path: Path,
                                                  family: str) -> None:
    folder = fresh(folders, family, tmp_path)
    original = (folder / "config.json").read_text()
    keys = KEYS_OF[family]
    required = [k for k, spec in keys.read.items() if spec.default is REQUIRED]
    assert required
    for key in required:
        (folder / "config.json").write_text(original)

        def drop(c: dict, key: str = key) -> None:
            c.pop(key)
            for alias, target in keys.aliases.items():
                if target == key:
                    c.pop(alias, None)
        edit_config(folder, drop)
        err = refusal(family, folder)
        assert_names(err, key)
        assert "has no" in err.diagnostics[0].message


@pytest.mark.parametrize("family", FAMILIES)
def test_every_refused_key_is_refused_when_on(folders: dict[str, Path], tmp_path: Path,
                                              family: str) -> None:
    folder = fresh(folders, family, tmp_path)
    original = (folder / "config.json").read_text()
    refused = KEYS_OF[family].refused
    assert refused
    for key, spec in refused.items():
        (folder / "config.json").write_text(original)
        edit_config(folder, lambda c: c.__setitem__(key, spec.example))
        err = refusal(family, folder)
        assert_names(err, key)
        assert spec.why in err.diagnostics[0].message


MINIMAL = {  # the required sizes only: every other key at transformers' default
    "BERT": dict(vocab_size=97, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                 intermediate_size=40, max_position_embeddings=32),
    "RoBERTa": dict(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=40, max_position_embeddings=40),
    "GPT-2": dict(vocab_size=61, n_positions=40, n_embd=24, n_layer=2, n_head=3),
    "T5": dict(vocab_size=53, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=3),
}


def _transformers_classes(family: str) -> tuple[Any, Any]:
    import transformers as t

    return {"BERT": (t.BertConfig, t.BertModel), "RoBERTa": (t.RobertaConfig, t.RobertaModel),
            "GPT-2": (t.GPT2Config, t.GPT2LMHeadModel),
            "T5": (t.T5Config, t.T5ForConditionalGeneration)}[family]


def _strip_defaults(family: str, data: dict) -> None:
    keys = KEYS_OF[family]
    for key, spec in [*keys.read.items(), *keys.refused.items()]:
        if getattr(spec, "default", None) is not REQUIRED:
            data.pop(key, None)


def _write_defaults(family: str, data: dict) -> None:
    keys = KEYS_OF[family]
    for key, spec in keys.read.items():
        if spec.default not in (REQUIRED, DERIVED):
            data[key] = spec.default
    for key, spec in keys.refused.items():
        data[key] = spec.allowed[0]


@pytest.mark.parametrize("how", ["absent", "written out"])
@pytest.mark.parametrize("family", FAMILIES)
def test_defaults_load_and_agree_with_transformers(tmp_path: Path, family: str,
                                                   how: str) -> None:
    """A folder whose every defaulted key is absent (or written out at gtdsl's default, and
    every refused key at its off value) loads, and gives transformers' numbers for the same
    folder: gtdsl's defaults are transformers' defaults."""
    config_cls, model_cls = _transformers_classes(family)
    torch.manual_seed(0)
    folder = save_folder(model_cls(config_cls(**MINIMAL[family])).eval(), tmp_path / "m")
    edit_config(folder, lambda c: (_strip_defaults if how == "absent" else _write_defaults)(
        family, c))
    ours = loader(family)(folder)
    hf = model_cls.from_pretrained(str(folder)).eval()
    ids = torch.randint(3, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if family in ("BERT", "RoBERTa"):
            got, want = ours.hidden_states(ids), hf(input_ids=ids).last_hidden_state
        elif family == "GPT-2":
            got, want = ours.logits(ids), hf(ids).logits
        else:
            dec = ids[:, :4]
            got, want = ours.logits(ids, dec), hf(input_ids=ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family,key,value", [
    ("BERT", "position_embedding_type", "relative_key_query"),
    ("BERT", "is_decoder", True),
    ("RoBERTa", "add_cross_attention", True),
    ("RoBERTa", "hidden_act", "prelu"),
    ("BERT", "hidden_act", "xielu"),
    ("GPT-2", "n_inner", 50),
    ("GPT-2", "tie_word_embeddings", False),
    ("GPT-2", "add_cross_attention", True),
    ("GPT-2", "activation_function", "prelu"),
    ("T5", "feed_forward_proj", "gated-prelu"),
    ("T5", "dense_act_fn", "gelu"),
    ("T5", "is_gated_act", True),
    ("T5", "is_encoder_decoder", False),
    ("T5", "pruned_heads", {"0": [1]}),
])
def test_a_config_with_an_unimplemented_key_is_refused(folders: dict[str, Path],
                                                      tmp_path: Path, family: str, key: str,
                                                      value: Any) -> None:
    folder = fresh(folders, family, tmp_path)
    edit_config(folder, lambda c: c.__setitem__(key, value))
    assert_names(refusal(family, folder), key)


def test_refused_keys_change_transformers_numbers(tmp_path: Path) -> None:
    """The refusals guard real differences: with each key on, transformers computes other
    numbers from the same weights (checked where transformers still honours the key)."""
    import transformers

    ids = torch.randint(3, 50, (2, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        # BERT is_decoder: a causal mask
        folder = make_folder("BERT", tmp_path / "bert")
        plain = transformers.BertModel.from_pretrained(str(folder)).eval()
        causal = transformers.BertModel.from_pretrained(str(folder), is_decoder=True).eval()
        assert (plain(ids).last_hidden_state - causal(ids).last_hidden_state).abs().max() > 1e-2
        # GPT-2 tie_word_embeddings false: the head is lm_head.weight, not the embeddings
        hf = gpt2_model(0, tie_word_embeddings=False)
        assert not torch.equal(hf.lm_head.weight, hf.transformer.wte.weight)
        tied = gpt2_model(0)
        tied.transformer.load_state_dict(hf.transformer.state_dict())
        assert (hf(ids).logits - tied(ids).logits).abs().max() > 1e-2
        # T5 dense_act_fn in config.json overrides the feed-forward activation
        folder = make_folder("T5", tmp_path / "t5")
        base = transformers.T5ForConditionalGeneration.from_pretrained(str(folder)).eval()
        edit_config(folder, lambda c: c.__setitem__("dense_act_fn", "gelu"))
        other = transformers.T5ForConditionalGeneration.from_pretrained(str(folder)).eval()
        dec = ids[:, :3]
        assert (base(input_ids=ids, decoder_input_ids=dec).logits -
                other(input_ids=ids, decoder_input_ids=dec).logits).abs().max() > 1e-3


@pytest.mark.parametrize("family,alias,key", [("GPT-2", "hidden_size", "n_embd"),
                                              ("T5", "num_attention_heads", "num_heads")])
def test_aliases_are_read_and_must_agree(folders: dict[str, Path], tmp_path: Path,
                                         family: str, alias: str, key: str) -> None:
    folder = fresh(folders, family, tmp_path)
    data = json.loads((folder / "config.json").read_text())
    value = data.pop(key)
    edit_config(folder, text=json.dumps({**data, alias: value}))
    loader(family)(folder)  # the alias alone stands for the key
    edit_config(folder, text=json.dumps({**data, alias: value + 1, key: value}))
    assert_names(refusal(family, folder), alias)


@pytest.mark.parametrize("family,change,key", [
    ("BERT", {"hidden_size": 25}, "hidden_size"),
    ("GPT-2", {"n_embd": 25}, "n_embd"),
    ("RoBERTa", {"pad_token_id": 39}, "max_position_embeddings"),
    ("T5", {"relative_attention_max_distance": 4}, "relative_attention_max_distance"),
])
def test_keys_checked_together(folders: dict[str, Path], tmp_path: Path, family: str,
                               change: dict, key: str) -> None:
    folder = fresh(folders, family, tmp_path)
    edit_config(folder, lambda c: c.update(change))
    assert_names(refusal(family, folder), key)


def test_the_model_type_must_match_the_loader(folders: dict[str, Path], tmp_path: Path) -> None:
    """A RoBERTa folder has BERT's tensor names: loaded as BERT it would give other numbers
    (the position ids differ), so the model type is checked."""
    folder = fresh(folders, "RoBERTa", tmp_path)
    assert_names(refusal("BERT", folder), "model_type")
    assert_names(refusal("GPT-2", fresh(folders, "T5", tmp_path / "x")), "model_type")


@pytest.mark.parametrize("kind", ["xlm-roberta", "camembert"])
def test_roberta_family_types_equal_transformers(tmp_path: Path, kind: str) -> None:
    import transformers

    from gtdsl.models.bert import Roberta

    cfg_cls, model_cls = {
        "xlm-roberta": (transformers.XLMRobertaConfig, transformers.XLMRobertaModel),
        "camembert": (transformers.CamembertConfig, transformers.CamembertModel)}[kind]
    torch.manual_seed(0)
    hf = model_cls(cfg_cls(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=40,
                           max_position_embeddings=40, type_vocab_size=1, pad_token_id=1)).eval()
    ours = Roberta(save_folder(hf, tmp_path))
    ids = torch.randint(3, 101, (2, 9), generator=torch.Generator().manual_seed(0))
    ids[1, 6:] = 1
    mask = (ids != 1).float()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    got = ours.hidden_states(ids, mask=mask)
    torch.testing.assert_close(got[mask.bool()], want[mask.bool()], rtol=1e-5, atol=1e-5)


def test_reorder_and_upcast_attn_changes_nothing_in_float32(tmp_path: Path) -> None:
    """Read, not refused: transformers' reordered float32 attention is gtdsl's attention."""
    import transformers

    from gtdsl.models.gpt2 import GPT2

    folder = make_folder("GPT-2", tmp_path, 3, reorder_and_upcast_attn=True)
    hf = transformers.GPT2LMHeadModel.from_pretrained(
        str(folder), attn_implementation="eager").eval()
    assert hf.config.reorder_and_upcast_attn
    ids = torch.randint(0, 61, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(GPT2(folder).logits(ids), hf(ids).logits, rtol=1e-5,
                                   atol=1e-5)


def test_gpt2_activations_are_the_ones_the_model_runs() -> None:
    from gtdsl.models import gpt2

    assert set(cfgmod.GPT2_ACTIVATIONS) == set(gpt2.ACTIVATIONS)


def test_declared_activations_are_transformers_names() -> None:
    from transformers.activations import ACT2CLS

    assert set(cfgmod.ACTIVATION_CODES) <= set(ACT2CLS)
    assert set(ACT2CLS) - set(cfgmod.ACTIVATION_CODES) == {"prelu", "xielu"}


def test_rules_refuse_their_bad_values_and_accept_good_ones() -> None:
    good = {"an integer from 1": [1, 24, cfgmod.MAX_SIZE], "a finite number > 0": [1e-12, 1, 0.5],
            "true or false": [True, False]}
    for keys in MODELS.values():
        for key, spec in keys.read.items():
            for bad in spec.rule.bad:
                assert not spec.rule.test(bad), (keys.model, key, bad)
            if spec.default not in (REQUIRED, DERIVED):
                assert spec.rule.test(spec.default), (keys.model, key)
            for what, values in good.items():
                if spec.rule.what.startswith(what):
                    assert all(spec.rule.test(v) for v in values), (keys.model, key)
    nan = cfgmod.positive_float()
    assert not nan.test(math.nan) and not nan.test(math.inf) and nan.test(3)


# --------------------------------------------------------------------------- the docs
def test_docs_list_exactly_the_declared_keys() -> None:
    text = (REPO / "docs" / "models.md").read_text()
    match = re.search(r"<!-- config-keys:start -->\n(.*?)<!-- config-keys:end -->", text, re.S)
    assert match, "docs/models.md lacks the generated key tables"
    assert match.group(1) == cfgmod.markdown(), (
        "regenerate with: python -c 'from gtdsl.models.config import markdown; "
        "print(markdown())'")


# --------------------------------------------------------------------------- fuzzing
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)


@pytest.mark.parametrize("family", FAMILIES)
def test_mutated_configs_load_or_are_gt0909(folders: dict[str, Path],
                                           tmp_path_factory: pytest.TempPathFactory,
                                           family: str) -> None:
    """Any change to a real config.json (declared keys, aliases and unknown keys set to any
    JSON value, or dropped) ends in a loaded model or GT0909, never another exception."""
    keys = KEYS_OF[family]
    names = [*keys.read, *keys.refused, *keys.aliases, "unknown_key"]
    base = folders[family]
    original = json.loads((base / "config.json").read_text())

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(st.lists(st.tuples(st.sampled_from(names), st.booleans(), _JSON), min_size=1,
                    max_size=3))
    def run(changes: list[tuple[str, bool, Any]]) -> None:
        folder = fresh(folders, family, tmp_path_factory.mktemp("fuzz"))
        data = dict(original)
        for key, drop, value in changes:
            if drop:
                data.pop(key, None)
            else:
                data[key] = value
        (folder / "config.json").write_text(json.dumps(data))
        try:
            loader(family)(folder)
        except ModelLoadError as e:
            assert e.diagnostics[0].code == "GT0909" and e.diagnostics[0].location
    run()
