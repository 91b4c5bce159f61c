/**
 * The rendered chat prompt with every `<image>` and `<video>` entry replaced, in order, by what transformers'
 * processors put there: a picture's tiles (Idefics3Processor's get_image_prompt_string) or a video's timestamped
 * frames (SmolVLMProcessor, VIDEO.md §4). Pure string work: the processor runs it with the image processor's grids,
 * the context meter with grids computed from picture sizes, so both count the same tokens.
 */
import { ProcessorError } from './processor-error';
import { videoPromptExpansion, videoToken, type FrameTokens } from './video-prompt';

/** The placeholder the chat template writes for a picture. */
export const imageToken = '<image>';

/** What one entry of the prompt expands to: a picture's grid of local tiles (0 x 0: the global tile alone), or a video's frames. */
export type PromptMediaShape =
  | { kind: 'image'; rows: number; cols: number }
  | { kind: 'video'; timestamps: readonly number[]; durationSeconds: number };

/** A picture's expansion: `<fake><row_r_col_c><image>*n` per local tile, a line break per row, then the global tile. */
export function imagePromptString(rows: number, cols: number, tokens: FrameTokens): string {
  const { fakeImageToken: around, globalImageToken: global, imageToken: image, imageSeqLen } = tokens;
  const tile = image.repeat(imageSeqLen);
  if (rows === 0 && cols === 0) return `${around}${global}${tile}${around}`;
  let text = '';
  for (let r = 1; r <= rows; r++) {
    for (let c = 1; c <= cols; c++) text += `${around}<row_${r}_col_${c}>${tile}`;
    text += '\n';
  }
  return `${text}\n${around}${global}${tile}${around}`;
}

/**
 * Replaces the prompt's `<image>` / `<video>` entries, in order, by the expansions of `media` (one per entry, of the
 * same kind). Refuses a prompt whose entries do not match, e.g. a question that itself types `<image>`.
 */
export function expandPrompt(rendered: string, media: readonly PromptMediaShape[], tokens: FrameTokens): string {
  const pieces = rendered.split(/(<image>|<video>)/);
  const entries = (pieces.length - 1) / 2;
  const kinds = media.map((m) => (m.kind === 'image' ? imageToken : videoToken));
  const found = pieces.filter((_, i) => i % 2 === 1);
  if (entries !== media.length || found.some((entry, i) => entry !== kinds[i])) {
    throw new ProcessorError(
      `The prompt's entries (${found.join(' ') || 'none'}) do not match its ${media.length} pictures and videos (${kinds.join(' ') || 'none'}). ` +
        `A question may not itself contain the text ${imageToken} or ${videoToken}.`,
    );
  }
  let text = pieces[0];
  media.forEach((m, i) => {
    text += (m.kind === 'image' ? imagePromptString(m.rows, m.cols, tokens) : videoPromptExpansion(m, tokens)) + pieces[2 * i + 2];
  });
  return text;
}
