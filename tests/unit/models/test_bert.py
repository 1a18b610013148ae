"""BERT in gtdsl against Hugging Face: hidden states equal transformers' BertModel on small
random configs built here, MiniLM sentence embeddings equal sentence-transformers' on the real
weights, a wrong-shaped weight is a located diagnostic, and the model file checks statically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.cli.main import main
from gtdsl.models.bert import HERE, Bert, ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import save_folder

TEXTS = ["The cat sits on the mat.", "A quick brown fox jumps over the lazy dog, twice.", "hi",
         "Gradual types catch shape errors before anything runs."]


def _random_bert_folder(tmp_path: Path, seed: int, **overrides) -> tuple[Path, object]:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=97, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=40, max_position_embeddings=32, type_vocab_size=2,
                     layer_norm_eps=1e-12, **overrides)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    return save_folder(model, tmp_path), model


def test_model_file_checks_statically() -> None:
    for path in HERE.glob("*.gt"):
        assert gtdsl.check(path) == [], path


@pytest.mark.parametrize("seed", [0, 1])
def test_hidden_states_equal_transformers(tmp_path: Path, seed: int) -> None:
    folder, hf = _random_bert_folder(tmp_path, seed)
    ours = Bert(folder)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (3, 11), generator=g)
    types = torch.randint(0, 2, (3, 11), generator=g)
    mask = torch.ones(3, 11)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        want = hf(input_ids=ids, token_type_ids=types, attention_mask=mask.long())
        got = ours.hidden_states(ids, types, mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want.last_hidden_state[keep], rtol=1e-5, atol=1e-5)


def test_minilm_embeddings_equal_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    ours = Bert("all-MiniLM-L6-v2")
    reference = SentenceTransformer(str(ours.dir), device="cpu")
    want = reference.encode(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    got = ours.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert (got - want).abs().max().item() <= 1e-5


def test_wrong_shaped_weight_is_a_located_diagnostic(tmp_path: Path) -> None:
    folder, _ = _random_bert_folder(tmp_path, 0)
    tensors = read_safetensors(folder / "model.safetensors")
    tensors["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(41, 24)
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError) as err:
        Bert(folder)
    text = str(err.value)
    assert text.startswith("error[GT0909]: `encoder.layer.1.intermediate.dense.weight`")
    assert "blocks.gt" in text and "declared here" in text and "got: (41, 24)" in text


def test_missing_and_unknown_tensors_are_diagnostics(tmp_path: Path) -> None:
    folder, _ = _random_bert_folder(tmp_path, 0)
    tensors = read_safetensors(folder / "model.safetensors")
    del tensors["embeddings.LayerNorm.bias"]
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ModelLoadError, match="has no tensor `embeddings.LayerNorm.bias`"):
        Bert(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read the model config"):
        Bert(folder)


def test_embed_command() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["embed", "all-MiniLM-L6-v2", "hello world", "the cat", "--format", "json"],
                out, err) == 0, err.getvalue()
    vectors = json.loads(out.getvalue())
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    out, err = io.StringIO(), io.StringIO()
    assert main(["embed", "/no/such/model", "x"], out, err) == 2
    assert "GT0909" in err.getvalue() and "Traceback" not in err.getvalue()


def test_save_writes_the_same_layout_back(tmp_path: Path) -> None:
    from transformers import BertModel

    folder, hf = _random_bert_folder(tmp_path / "in", 3)
    ours = Bert(folder)
    out = ours.save(tmp_path / "out")
    again = BertModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).last_hidden_state,
                                   hf(input_ids=ids).last_hidden_state)
    reloaded = Bert(out)
    for key, value in ours.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


@pytest.mark.parametrize("seed", [0, 1])
def test_roberta_hidden_states_equal_transformers(tmp_path: Path, seed: int) -> None:
    from transformers import RobertaConfig, RobertaModel

    from gtdsl.models.bert import Roberta

    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=40, max_position_embeddings=40,
                        type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
    hf = RobertaModel(cfg, add_pooling_layer=False).eval()
    ours = Roberta(save_folder(hf, tmp_path))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 101, (3, 12), generator=g)
    ids[1, 8:] = 1  # padding
    mask = (ids != 1).float()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        got = ours.hidden_states(ids, mask=mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)
