// GENERATED from schemas/pipeline.schema.json — do not edit by hand.
// Regenerate: the schema text verbatim between the raw-string delimiters (StagesTests.EmbeddedSchemaTests
// fails when this copy and the file differ, byte for byte). Embedded so the CLI works from any directory.

public enum EmbeddedSchema {
    /// The exact bytes of schemas/pipeline.schema.json.
    public static let text = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://github.com/qlora-run/qlora-run/schemas/pipeline.schema.json",
  "title": "qlora-run pipeline",
  "description": "A qlora-run pipeline: named stages forming a DAG through stage references. Paths are relative to the pipeline file. Every optional field has a default; required fields have none.",
  "type": "object",
  "additionalProperties": false,
  "required": ["version", "name", "stages"],
  "properties": {
    "version": {
      "description": "Manifest format version. Required; must be 1.",
      "const": 1
    },
    "name": {
      "description": "Pipeline name, shown in logs and run records. Required.",
      "type": "string",
      "minLength": 1
    },
    "seed": {
      "description": "Seed for every random number in the pipeline (initialisation, adapters, shuffling, dropout). Part of every stage key.",
      "type": "integer",
      "minimum": 0,
      "default": 0
    },
    "cache": {
      "description": "Cache directory (relative to the pipeline file). Overridden by --cache DIR.",
      "type": "string",
      "minLength": 1,
      "default": ".qlora"
    },
    "stages": {
      "description": "Stage name -> stage. Each stage has a `kind` and that kind's fields. A field naming another stage is an edge of the DAG.",
      "type": "object",
      "minProperties": 1,
      "additionalProperties": { "$ref": "#/$defs/stage" }
    }
  },
  "$defs": {
    "stage": {
      "description": "One stage, selected by its `kind`.",
      "x-discriminator": "kind",
      "oneOf": [
        { "$ref": "#/$defs/load_checkpoint" },
        { "$ref": "#/$defs/quantize" },
        { "$ref": "#/$defs/attach_adapters" },
        { "$ref": "#/$defs/train" },
        { "$ref": "#/$defs/save_adapter" },
        { "$ref": "#/$defs/evaluate" }
      ]
    },
    "load_checkpoint": {
      "description": "Loads a Hugging Face-style checkpoint directory (config.json, safetensors weights, tokenizer.json), or creates a new model initialised deterministically from the pipeline seed. Exactly one of `path` and `init`.",
      "type": "object",
      "x-output": "checkpoint",
      "x-implementation-version": 1,
      "additionalProperties": false,
      "required": ["kind"],
      "oneOf": [
        { "required": ["path"] },
        { "required": ["init"] }
      ],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "load_checkpoint" },
        "path": {
          "description": "Checkpoint directory: config.json + model.safetensors (or a sharded index) + tokenizer.json. Digested by content.",
          "type": "string",
          "minLength": 1,
          "x-input-path": "directory"
        },
        "init": {
          "description": "Create a new model with these sizes, weights ~ normal(0, 0.02) from the pipeline seed, and a byte-level tokenizer (256 bytes + <|endoftext|>, <|im_start|>, <|im_end|>).",
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "arch": { "description": "Weight naming: `llama` (Hugging Face names, rotate-half rotary) or `minimind` (MiniMind's native names, tied head).", "enum": ["llama", "minimind"], "default": "llama" },
            "hidden_size": { "description": "Model width C.", "type": "integer", "minimum": 1, "default": 64 },
            "intermediate_size": { "description": "MLP width I.", "type": "integer", "minimum": 1, "default": 176 },
            "num_hidden_layers": { "description": "Decoder layers.", "type": "integer", "minimum": 1, "default": 2 },
            "num_attention_heads": { "description": "Query heads NH (must divide hidden_size).", "type": "integer", "minimum": 1, "default": 4 },
            "num_key_value_heads": { "description": "Key/value heads KVH (must divide num_attention_heads).", "type": "integer", "minimum": 1, "default": 2 },
            "vocab_size": { "description": "Vocabulary size V; at least 259 for the byte-level tokenizer.", "type": "integer", "minimum": 259, "default": 259 },
            "max_position_embeddings": { "description": "Longest sequence the rotary table covers.", "type": "integer", "minimum": 1, "default": 512 },
            "rms_norm_eps": { "description": "RMSNorm epsilon.", "type": "number", "exclusiveMinimum": 0, "default": 1e-05 },
            "rope_theta": { "description": "Rotary base frequency.", "type": "number", "exclusiveMinimum": 0, "default": 10000.0 },
            "tie_word_embeddings": { "description": "Share the embedding matrix with the output head.", "type": "boolean", "default": true }
          }
        }
      }
    },
    "quantize": {
      "description": "Replaces the linear layers by frozen 4-bit blockwise-quantized ones (bitsandbytes layout and serialization). Embeddings and norms are never quantized.",
      "type": "object",
      "x-output": "quantized",
      "x-implementation-version": 1,
      "additionalProperties": false,
      "required": ["kind", "model"],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "quantize" },
        "model": { "description": "The stage whose checkpoint is quantized.", "type": "string", "x-stage-ref": ["checkpoint"] },
        "type": { "description": "4-bit code book: NF4 (normal float) or FP4.", "enum": ["nf4", "fp4"], "default": "nf4" },
        "block_size": { "description": "Weights per absmax block: a power of two from 32 to 4096.", "enum": [32, 64, 128, 256, 512, 1024, 2048, 4096], "default": 64 },
        "double_quant": { "description": "Quantize the absmax statistics to 8 bits in blocks of 256 (about 4.13 instead of 4.5 bits/param at block 64).", "type": "boolean", "default": true },
        "compute_dtype": { "description": "Compute precision of the dequantized tiles. Only fp32 exists; bf16 is not supported yet.", "enum": ["fp32"], "default": "fp32" },
        "skip": { "description": "Module names or name suffixes kept in full precision (e.g. [lm_head]). Empty: every linear layer, including the output head, is quantized.", "type": "array", "items": { "type": "string", "minLength": 1 }, "uniqueItems": true, "default": [] }
      }
    },
    "attach_adapters": {
      "description": "Attaches trainable LoRA adapters (y += scale * B(A x)) to the frozen model's linear layers.",
      "type": "object",
      "x-output": "adapted",
      "x-implementation-version": 2,
      "additionalProperties": false,
      "required": ["kind", "model"],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "attach_adapters" },
        "model": { "description": "The stage whose model gets adapters (loaded or quantized).", "type": "string", "x-stage-ref": ["checkpoint", "quantized"] },
        "targets": {
          "description": "Modules to adapt: `square` (every linear with in_features == out_features), `all-linear` (every linear except the output head), a list of module names or name suffixes (PEFT target_modules), or {regex: PATTERN} matched against full module names.",
          "oneOf": [
            { "enum": ["square", "all-linear"] },
            { "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true },
            { "type": "object", "additionalProperties": false, "required": ["regex"], "properties": { "regex": { "description": "Regular expression matched against the whole module name.", "type": "string", "minLength": 1 } } }
          ],
          "default": "square"
        },
        "rank": { "description": "Adapter rank r.", "type": "integer", "minimum": 1, "default": 16 },
        "alpha": { "description": "LoRA alpha; scale = alpha / rank (alpha / sqrt(rank) with rslora). Default: rank (scale 1).", "type": "number", "exclusiveMinimum": 0 },
        "dropout": { "description": "Dropout probability on the adapter input during training. Default: 0, or with init: {from: DIR} the adapter's own lora_dropout (a value written here overrides it, 0 included).", "type": "number", "minimum": 0, "exclusiveMaximum": 1 },
        "rslora": { "description": "Rank-stabilised scaling alpha / sqrt(rank).", "type": "boolean", "default": false },
        "init": {
          "description": "Initialisation: `gaussian` (A ~ N(0, init_std), B = 0), `kaiming` (PEFT's default: kaiming-uniform A, B = 0), or {from: DIR} to start from an existing PEFT adapter directory.",
          "oneOf": [
            { "enum": ["gaussian", "kaiming"] },
            { "type": "object", "additionalProperties": false, "required": ["from"], "properties": { "from": { "description": "PEFT adapter directory (adapter_config.json + adapter_model.safetensors).", "type": "string", "minLength": 1, "x-input-path": "directory" } } }
          ],
          "default": "gaussian"
        },
        "init_std": { "description": "Standard deviation of A for `gaussian` init.", "type": "number", "exclusiveMinimum": 0, "default": 0.02 }
      }
    },
    "train": {
      "description": "Trains the adapters on chat or text data (loss on assistant tokens), with checkpoints inside the stage so an interrupted run resumes.",
      "type": "object",
      "x-output": "trained",
      "x-implementation-version": 2,
      "additionalProperties": false,
      "required": ["kind", "model", "data"],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "train" },
        "model": { "description": "The stage whose adapters are trained.", "type": "string", "x-stage-ref": ["adapted", "trained"] },
        "data": { "description": "JSONL training data: `conversations` or `messages` ([{role, content}]), `text`, or `prompt`/`completion` per line.", "type": "string", "minLength": 1, "x-input-path": "file" },
        "epochs": { "description": "Passes over the data.", "type": "integer", "minimum": 1, "default": 1 },
        "max_steps": { "description": "Stop after this many optimizer steps (0: no limit; epochs decide).", "type": "integer", "minimum": 0, "default": 0 },
        "batch_size": { "description": "Examples per micro-batch (padded to the longest in the batch).", "type": "integer", "minimum": 1, "default": 1 },
        "grad_accum": { "description": "Micro-batches per optimizer step; the loss is normalised by the supervised tokens of all of them.", "type": "integer", "minimum": 1, "default": 1 },
        "lr": { "description": "Peak learning rate.", "type": "number", "exclusiveMinimum": 0, "default": 0.0002 },
        "schedule": { "description": "Learning-rate schedule: constant, cosine or linear (with warmup, transformers' formulas), or cosine_floor (lr/10 + 0.5*lr*(1 + cos(pi*step/total)), the reference notebook's).", "enum": ["constant", "cosine", "linear", "cosine_floor"], "default": "linear" },
        "warmup_steps": { "description": "Linear warmup steps (constant, cosine, linear).", "type": "integer", "minimum": 0, "default": 0 },
        "optimizer": { "description": "adamw (PyTorch semantics), adamw8bit (8-bit blockwise moments), paged_adamw_8bit (the same as adamw8bit on CPU), or sgd.", "enum": ["adamw", "adamw8bit", "paged_adamw_8bit", "sgd"], "default": "adamw" },
        "betas": { "description": "Adam betas [beta1, beta2].", "type": "array", "items": { "type": "number", "minimum": 0, "exclusiveMaximum": 1 }, "minItems": 2, "maxItems": 2, "default": [0.9, 0.999] },
        "eps": { "description": "Adam epsilon (outside the square root).", "type": "number", "exclusiveMinimum": 0, "default": 1e-08 },
        "weight_decay": { "description": "Decoupled weight decay (AdamW) or L2 (SGD).", "type": "number", "minimum": 0, "default": 0 },
        "momentum": { "description": "SGD momentum.", "type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0 },
        "clip_grad_norm": { "description": "Clip the global gradient norm to this value (0: no clipping).", "type": "number", "minimum": 0, "default": 1.0 },
        "max_seq_len": { "description": "Truncate examples to this many tokens.", "type": "integer", "minimum": 2, "default": 512 },
        "shuffle": { "description": "Shuffle examples each epoch (seeded by the pipeline seed and epoch).", "type": "boolean", "default": true },
        "train_on_prompt": { "description": "Also put loss on system/user tokens (default: assistant content and its <|im_end|> only).", "type": "boolean", "default": false },
        "checkpoint_every": { "description": "Write a resumable checkpoint every N optimizer steps (and at every epoch end).", "type": "integer", "minimum": 1, "default": 50 },
        "log_every": { "description": "A progress line every N optimizer steps, always in the stage log; printed too when not on a terminal (a terminal shows a live bar instead).", "type": "integer", "minimum": 1, "default": 10 },
        "gradient_checkpointing": { "description": "Recompute each decoder layer's activations in backward to save memory (same numbers, about a third more compute): true, false, or auto (on when the kept activations of a batch_size × max_seq_len micro-batch would exceed 1 GiB).", "enum": ["auto", true, false], "default": "auto" }
      }
    },
    "save_adapter": {
      "description": "Writes the adapters in PEFT format (adapter_config.json + adapter_model.safetensors) and publishes them atomically to `to`.",
      "type": "object",
      "x-output": "adapter",
      "x-implementation-version": 1,
      "additionalProperties": false,
      "required": ["kind", "model", "to"],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "save_adapter" },
        "model": { "description": "The stage whose adapters are saved.", "type": "string", "x-stage-ref": ["adapted", "trained"] },
        "to": { "description": "Destination directory outside the cache (relative to the pipeline file); re-published on a cache hit if missing or different.", "type": "string", "minLength": 1, "x-output-path": true }
      }
    },
    "evaluate": {
      "description": "Evaluates a model on held-out data (loss, perplexity, token accuracy on supervised tokens), optionally against the base model without adapters, with greedy generations and gates.",
      "type": "object",
      "x-output": "report",
      "x-implementation-version": 2,
      "additionalProperties": false,
      "required": ["kind", "model", "data"],
      "properties": {
        "kind": { "description": "Stage kind.", "const": "evaluate" },
        "model": { "description": "The stage whose model is evaluated (loaded, quantized, adapted or trained).", "type": "string", "x-stage-ref": ["checkpoint", "quantized", "adapted", "trained"] },
        "data": { "description": "JSONL evaluation data, same formats as train.", "type": "string", "minLength": 1, "x-input-path": "file" },
        "metrics": { "description": "Metrics to compute.", "type": "array", "items": { "enum": ["loss", "perplexity", "token_accuracy"] }, "minItems": 1, "uniqueItems": true, "default": ["loss", "perplexity", "token_accuracy"] },
        "compare_base": { "description": "Also evaluate the same model without adapters and report the difference.", "type": "boolean", "default": true },
        "prompts": { "description": "User prompts for greedy generations (ChatML), shown base vs adapted.", "type": "array", "items": { "type": "string" }, "default": [] },
        "max_new_tokens": { "description": "Tokens generated per prompt.", "type": "integer", "minimum": 1, "default": 32 },
        "max_seq_len": { "description": "Truncate evaluation examples to this many tokens.", "type": "integer", "minimum": 2, "default": 512 },
        "batch_size": { "description": "Examples per forward pass.", "type": "integer", "minimum": 1, "default": 4 },
        "fail_if": {
          "description": "Gates: the stage fails when a metric of the evaluated model crosses a threshold.",
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "perplexity_above": { "description": "Fail when perplexity is above this value (absent: no gate).", "type": "number" },
            "loss_above": { "description": "Fail when loss is above this value (absent: no gate).", "type": "number" }
          },
          "default": {}
        }
      }
    }
  }
}

"""#
}
