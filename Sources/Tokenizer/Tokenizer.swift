// Tokenizer target: tokenizer.json (HF tokenizers) encode/decode.
