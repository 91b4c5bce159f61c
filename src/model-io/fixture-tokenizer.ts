/**
 * The tiny test model's tokenizer: a small byte-level BPE trained on a fixed corpus, carrying the Idefics3 special
 * tokens and SmolVLM's chat template, written as tokenizer.json / tokenizer_config.json / special_tokens_map.json.
 */

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer (byte-level BPE)

/** GPT-2's reversible byte -> printable character map (the ByteLevel pre-tokenizer's alphabet), in vocab order. */
function byteLevelAlphabet(): { byteToChar: string[]; orderedBytes: number[] } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byteToChar = new Array<string>(256);
  for (const b of printable) byteToChar[b] = String.fromCharCode(b);
  const orderedBytes = [...printable];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (byteToChar[b] !== undefined) continue;
    byteToChar[b] = String.fromCharCode(256 + extra++);
    orderedBytes.push(b);
  }
  return { byteToChar, orderedBytes };
}

/** The split the ByteLevel pre-tokenizer does (GPT-2's regex); digits are already split one by one before it. */
const byteLevelSplit = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * English the merges are learnt from: the words of our prompts (chat roles, "Describe the image.") and of short
 * answers about pictures, so prompts tokenize into word-sized pieces as with a real tokenizer.
 */
const mergeCorpus = [
  'User: Describe the image. Assistant: The image shows a red circle, a blue square, a green triangle and a yellow star.',
  'User: Can you describe this image? Assistant: This image has some shapes and a word on a light background.',
  'User: What is in the image? Assistant: There is a circle, a square, a triangle and a star in the picture.',
  'User: What does the text say? Assistant: The text says SHAPES in black letters at the bottom of the image.',
  'User: Provide all the OCR results of this image. Assistant: The word is written in the image.',
  'User: How many shapes are there? Assistant: There are four shapes: the circle is red, the square is blue.',
  'User: What color is the star? Assistant: The star is yellow and the triangle is green.',
  'The image is a photo of a cat and a dog. The cat is on the left of the image and the dog is on the right.',
  'Describe the image in one sentence. Describe the picture. Describe the text in the image.',
  'the the the image image image this that with what there is are was of and in on at to a an it',
].join('\n');

interface TrainedBpe {
  merges: [string, string][];
}

/**
 * A minimal BPE trainer: repeatedly merges the most frequent adjacent pair (ties broken by the pair's text, so the
 * result is deterministic) over the pre-tokenized words of the corpus.
 */
function trainBpe(corpus: string, byteToChar: string[], mergeCount: number): TrainedBpe {
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const word of corpus.match(byteLevelSplit) ?? []) {
    const mapped = Array.from(encoder.encode(word), (b) => byteToChar[b]).join('');
    wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([word, count]) => ({ symbols: Array.from(word), count }));
  const merges: [string, string][] = [];
  while (merges.length < mergeCount) {
    const pairCounts = new Map<string, { pair: [string, string]; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        const entry = pairCounts.get(key);
        if (entry) entry.count += count;
        else pairCounts.set(key, { pair: [symbols[i], symbols[i + 1]], count });
      }
    }
    let best: { key: string; pair: [string, string]; count: number } | null = null;
    for (const [key, entry] of pairCounts) {
      if (!best || entry.count > best.count || (entry.count === best.count && key < best.key)) best = { key, ...entry };
    }
    if (!best) break; // every word is a single symbol
    merges.push(best.pair);
    const [left, right] = best.pair;
    for (const word of words) {
      const merged: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === left && word.symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(word.symbols[i]);
        }
      }
      word.symbols = merged;
    }
  }
  return { merges };
}

/** Ids of the special tokens of a generated tokenizer. */
export interface FixtureTokenIds {
  endOfText: number;
  imStart: number;
  imEnd: number;
  globalImage: number;
  fakeTokenAroundImage: number;
  image: number;
  endOfUtterance: number;
  /** Total tokens (model vocab + added tokens): the model's vocab_size. */
  vocabSize: number;
}

export type Json = Record<string, unknown>;

export interface FixtureTokenizer {
  tokenizerJson: Json;
  tokenizerConfig: Json;
  specialTokensMap: Json;
  ids: FixtureTokenIds;
}

/** SmolVLM's chat template, verbatim from HuggingFaceTB/SmolVLM-256M-Instruct's chat_template.json. */
export const smolVlmChatTemplate =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

const tinyMergeCount = 200;

function addedToken(id: number, content: string): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function specialTokenEntry(content: string): Json {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false };
}

/**
 * A small byte-level BPE tokenizer laid out like SmolVLM's: <|endoftext|>, <|im_start|>, <|im_end|> first, then the
 * 256 byte tokens, then the learnt merges; the Idefics3 tokens (<global-img>, <row_i_col_j>, <fake_token_around_image>,
 * <image>, <end_of_utterance>) are added special tokens after the BPE vocab, as in the real file.
 */
export function buildTinyTokenizer(): FixtureTokenizer {
  const { byteToChar, orderedBytes } = byteLevelAlphabet();
  const leadingSpecials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const vocab: Record<string, number> = {};
  let nextId = 0;
  for (const token of leadingSpecials) vocab[token] = nextId++;
  for (const b of orderedBytes) vocab[byteToChar[b]] = nextId++;
  const { merges } = trainBpe(mergeCorpus, byteToChar, tinyMergeCount);
  for (const [left, right] of merges) {
    const merged = left + right;
    if (vocab[merged] === undefined) vocab[merged] = nextId++;
  }

  const idefics3Specials = ['<global-img>'];
  for (let row = 1; row <= 6; row++) for (let col = 1; col <= 6; col++) idefics3Specials.push(`<row_${row}_col_${col}>`);
  idefics3Specials.push('<fake_token_around_image>', '<image>', '<end_of_utterance>');
  const addedTokens = leadingSpecials.map((content) => addedToken(vocab[content], content));
  const specialIds = new Map<string, number>(leadingSpecials.map((content) => [content, vocab[content]]));
  for (const content of idefics3Specials) {
    specialIds.set(content, nextId);
    addedTokens.push(addedToken(nextId++, content));
  }
  const id = (content: string): number => specialIds.get(content) as number;

  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    // As SmolVLM's tokenizer.json: digits split one by one, then GPT-2 byte-level with its regex.
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const addedTokensDecoder: Json = {};
  for (const token of addedTokens) {
    const { id: tokenId, ...rest } = token as { id: number } & Json;
    addedTokensDecoder[String(tokenId)] = rest;
  }
  const tokenizerConfig: Json = {
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: ['<fake_token_around_image>', '<image>', '<end_of_utterance>'],
    bos_token: '<|im_start|>',
    chat_template: smolVlmChatTemplate,
    clean_up_tokenization_spaces: false,
    eos_token: '<end_of_utterance>',
    legacy: false,
    model_max_length: 2048,
    pad_token: '<|im_end|>',
    processor_class: 'Idefics3Processor',
    tokenizer_class: 'GPT2Tokenizer',
    truncation_side: 'left',
    unk_token: '<|endoftext|>',
    vocab_size: nextId,
  };
  const specialTokensMap: Json = {
    additional_special_tokens: ['<fake_token_around_image>', '<image>', '<end_of_utterance>'].map(specialTokenEntry),
    bos_token: specialTokenEntry('<|im_start|>'),
    eos_token: specialTokenEntry('<|im_end|>'),
    pad_token: specialTokenEntry('<|im_end|>'),
    unk_token: specialTokenEntry('<|endoftext|>'),
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    specialTokensMap,
    ids: {
      endOfText: id('<|endoftext|>'),
      imStart: id('<|im_start|>'),
      imEnd: id('<|im_end|>'),
      globalImage: id('<global-img>'),
      fakeTokenAroundImage: id('<fake_token_around_image>'),
      image: id('<image>'),
      endOfUtterance: id('<end_of_utterance>'),
      vocabSize: nextId,
    },
  };
}
