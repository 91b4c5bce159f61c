/**
 * The text a video becomes in SmolVLM2's prompt (VIDEO.md §1 and §4), as transformers' SmolVLMProcessor writes it:
 * the video chat template, English number words (num2words), `H:MM:SS` durations (str(timedelta)), `MM:SS` frame
 * timestamps, and one global-image block of image tokens per frame (frames are never split into tiles). Pure string
 * work, shared by the processor, the context meter and the CLI's dry run.
 */

/**
 * transformers' SmolVLM DEFAULT_CHAT_TEMPLATE: the hub template plus a branch writing `<video>` for a video item.
 * transformers renders with it whenever a conversation holds a video (the model's own template has no video branch).
 * The role prefix is `User:` when a message's first item is an image and `User: ` otherwise.
 */
export const smolVlmVideoChatTemplate =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}" +
  "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}" +
  "{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** The placeholder the chat template writes for a video item. */
export const videoToken = '<video>';

// ---------------------------------------------------------------------------------------------------------------
// Number words: num2words' English cardinals

interface Words {
  text: string;
  value: number;
}
type Split = Words | Split[];

/** num2words' English cards, largest first (the order its splitting walks them in). */
const cards: readonly [number, string][] = [
  [1e12, 'trillion'],
  [1e9, 'billion'],
  [1e6, 'million'],
  [1000, 'thousand'],
  [100, 'hundred'],
  [90, 'ninety'], [80, 'eighty'], [70, 'seventy'], [60, 'sixty'], [50, 'fifty'], [40, 'forty'], [30, 'thirty'],
  ...['twenty', 'nineteen', 'eighteen', 'seventeen', 'sixteen', 'fifteen', 'fourteen', 'thirteen', 'twelve', 'eleven', 'ten',
    'nine', 'eight', 'seven', 'six', 'five', 'four', 'three', 'two', 'one', 'zero'].map((word, i): [number, string] => [20 - i, word]),
];

/** num2words' splitnum: value as (multiplier words, card, remainder words), recursively. */
function splitNumber(value: number): Split[] {
  const [card, word] = cards.find(([n]) => n <= value) as [number, string];
  const [times, rest] = value === 0 ? [1, 0] : [Math.floor(value / card), value % card];
  const out: Split[] = [times === 1 ? { text: 'one', value: 1 } : splitNumber(times), { text: word, value: card }];
  if (rest > 0) out.push(splitNumber(rest));
  return out;
}

/** num2words' English merge of two neighbouring parts: "twenty-one", "one hundred and one", "one thousand, one hundred". */
function merge(left: Words, right: Words): Words {
  if (left.value === 1 && right.value < 100) return right;
  if (left.value < 100 && left.value > right.value) return { text: `${left.text}-${right.text}`, value: left.value + right.value };
  if (left.value >= 100 && right.value < 100) return { text: `${left.text} and ${right.text}`, value: left.value + right.value };
  if (right.value > left.value) return { text: `${left.text} ${right.text}`, value: left.value * right.value };
  return { text: `${left.text}, ${right.text}`, value: left.value + right.value };
}

/** num2words' clean: merges the split parts pairwise from the left, cleaning nested parts first. */
function clean(parts: Split[]): Words {
  let current = parts;
  while (current.length !== 1) {
    const [left, right] = current;
    if (!Array.isArray(left) && !Array.isArray(right)) {
      const rest = current.slice(2);
      current = rest.length > 0 ? [merge(left, right), rest] : [merge(left, right)];
    } else {
      current = current.map((part) => (Array.isArray(part) ? (part.length === 1 ? part[0] : clean(part)) : part));
    }
  }
  const [only] = current;
  return Array.isArray(only) ? clean(only) : only;
}

/** English words for a whole number as Python's num2words writes them: 21 "twenty-one", 101 "one hundred and one". */
export function numberWords(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 1e15) throw new RangeError(`numberWords takes a whole number from 0 to 10^15 - 1 (got ${value}).`);
  return clean(splitNumber(value)).text;
}

// ---------------------------------------------------------------------------------------------------------------
// Durations and timestamps

const twoDigits = (n: number): string => String(n).padStart(2, '0');

/** Python's str(timedelta(seconds=s)) for whole seconds >= 0: `0:00:10`, `1:02:03`, `1 day, 0:00:05`. */
export function formatVideoDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new RangeError(`A video duration is a whole number of seconds >= 0 (got ${seconds}).`);
  const days = Math.floor(seconds / 86400);
  const rest = seconds % 86400;
  const clock = `${Math.floor(rest / 3600)}:${twoDigits(Math.floor((rest % 3600) / 60))}:${twoDigits(rest % 60)}`;
  return days === 0 ? clock : `${days} day${days === 1 ? '' : 's'}, ${clock}`;
}

/** Python's float floor division `t // d` for t >= 0, d > 0 (fmod first, as CPython does, so 119.99999999999999 // 60 is 1). */
function pythonFloorDiv(t: number, d: number): number {
  const mod = t % d;
  const div = (t - mod) / d;
  if (div === 0) return 0;
  const floor = Math.floor(div);
  return div - floor > 0.5 ? floor + 1 : floor;
}

/** A frame's timestamp as transformers writes it: `f"{int(t // 60):02d}:{int(t % 60):02d}"`: `00:01`, `01:05`, `125:00`. */
export function formatFrameTimestamp(seconds: number): string {
  if (!(Number.isFinite(seconds) && seconds >= 0)) throw new RangeError(`A frame timestamp is a number of seconds >= 0 (got ${seconds}).`);
  return `${twoDigits(Math.trunc(pythonFloorDiv(seconds, 60)))}:${twoDigits(Math.trunc(seconds % 60))}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The expansion

/** The special tokens of a frame's block (the processor's fake_image_token, global_img_token and image_token). */
export interface FrameTokens {
  fakeImageToken: string;
  globalImageToken: string;
  imageToken: string;
  /** `<image>` tokens per frame (image_seq_len). */
  imageSeqLen: number;
}

export const smolVlmFrameTokens: Omit<FrameTokens, 'imageSeqLen'> = {
  fakeImageToken: '<fake_token_around_image>',
  globalImageToken: '<global-img>',
  imageToken: '<image>',
};

/** One frame's block: one global-image tile, never split (`<fake><global-img><image>*n<fake>`). */
export function frameImageBlock(tokens: FrameTokens): string {
  return `${tokens.fakeImageToken}${tokens.globalImageToken}${tokens.imageToken.repeat(tokens.imageSeqLen)}${tokens.fakeImageToken}`;
}

/** What one `<video>` of the rendered prompt is replaced by (VIDEO.md §4). */
export function videoPromptExpansion(video: { timestamps: readonly number[]; durationSeconds: number }, tokens: FrameTokens): string {
  const count = video.timestamps.length;
  if (count === 0) throw new RangeError('A video needs at least one sampled frame.');
  const block = frameImageBlock(tokens);
  let text = `You are provided the following series of ${numberWords(count)} frames from a ${formatVideoDuration(Math.trunc(video.durationSeconds))} [H:MM:SS] video.\n`;
  for (const timestamp of video.timestamps) text += `\nFrame from ${formatFrameTimestamp(timestamp)}:${block}`;
  return `${text}\n\n`;
}
