/**
 * The pure pieces of the multi-picture chat: the worker's picture list (several files at once, a bad one named and
 * left out, removal, New chat) on a ChatSession without a model, the context meter's text, the sample list and one
 * picture's share of an attention snapshot.
 */
import { describe, expect, it } from 'vitest';
import { ChatSession } from '../../src/session/chat-session';
import type { ContextUsage, PromptImage } from '../../src/session/types';
import { pictureAttention, pictureAttentionMatrix } from '../../src/ui/attention-images';
import { longestEdgeChoices, readContext } from '../../src/ui/context-meter';
import { fetchSampleImages, parseSampleList } from '../../src/ui/sample-images';
import { createConversationState } from '../../src/worker/conversation-state';
import { ImageInputError, type DecodedImage } from '../../src/worker/image-input';

/** Decodes "WxH" text files to grey pixels of that size; anything else is refused as the browser decoder would. */
async function fakeDecode(image: Blob, name: string): Promise<DecodedImage> {
  const match = /^(\d+)x(\d+)$/.exec(await image.text());
  if (!match) throw new ImageInputError(`"${name}" could not be decoded as a picture.`);
  const [width, height] = [Number(match[1]), Number(match[2])];
  return {
    pixels: { data: new Uint8ClampedArray(width * height * 3).fill(128), width, height, channels: 3 },
    originalWidth: width,
    originalHeight: height,
    scaledDown: false,
    thumbnail: new Blob(['thumb'], { type: 'image/png' }),
  };
}

const file = (text: string, name: string) => ({ file: new Blob([text]), name });

describe('the worker keeps the conversation pictures', () => {
  it('adds several at once, names and leaves out one that fails, removes a pending one, clears with New chat', async () => {
    const state = createConversationState(new ChatSession({ noScoresHint: '' }), fakeDecode);
    const result = await state.addImages([file('320x240', 'a.png'), file('not a picture', 'notes.txt'), file('6x2000', 'tall.png')]);
    expect(result.added.map((image) => [image.name, image.width, image.height, image.sent, image.bytes])).toEqual([
      ['a.png', 320, 240, false, 7],
      ['tall.png', 6, 2000, false, 6],
    ]);
    expect(result.rejected).toEqual([{ name: 'notes.txt', message: '"notes.txt" could not be decoded as a picture.' }]);
    // Without a model there is no processor: no token counts, no usage yet.
    expect(result.added[0].imageTokens).toBeNull();
    expect(result.usage).toBeNull();

    await state.addImages([file('64x64', 'b.png')]);
    expect(state.listImages().map((image) => image.name)).toEqual(['a.png', 'tall.png', 'b.png']);
    state.removeImage(result.added[1].id);
    expect(state.listImages().map((image) => image.name)).toEqual(['a.png', 'b.png']);
    expect(() => state.removeImage(999)).toThrow(/No picture or video 999/);
    await expect(state.addImages([])).rejects.toThrow(/at least one picture/);

    state.newChat();
    expect(state.listImages()).toEqual([]);
  });
});

describe('the context meter', () => {
  const usage: ContextUsage = {
    conversationTokens: 1100,
    pendingImageTokens: 832,
    textTokens: 402,
    imageTokens: 832,
    usedTokens: 1234,
    questionTokens: 0,
    nextImageTokens: 1088,
    contextTokens: 8192,
    longestImageEdge: 2048,
    defaultLongestImageEdge: 2048,
    tileSize: 512,
  };

  it('reads used / context and what the next picture adds', () => {
    const reading = readContext(usage, 32, 1);
    expect(reading.summary).toBe('1,234 / 8,192 tokens · next image up to +1,088');
    expect(reading.detail).toBe('402 text + 832 image tokens (1 picture at 2048 px); up to 32 more for the answer');
    expect([reading.overBy, reading.advice]).toEqual([0, null]);
  });

  it('says how much of the text is the question being typed', () => {
    const typed = readContext({ ...usage, textTokens: 423, usedTokens: 1255, questionTokens: 21 }, 32, 1);
    expect(typed.summary).toBe('1,255 / 8,192 tokens · next image up to +1,088');
    expect(typed.detail).toBe('423 text + 832 image tokens (1 picture at 2048 px), 21 of them the question; up to 32 more for the answer');
  });

  it('says by how much a prompt is over and what to do', () => {
    const reading = readContext({ ...usage, usedTokens: 8180 }, 32, 9);
    expect(reading.overBy).toBe(20);
    expect(reading.advice).toBe(
      `With its answer the next prompt needs 20 more tokens than the model's context of 8,192: remove an image, start a New chat, set "Longest image edge" lower, or ask for fewer new tokens.`,
    );
    // At one tile there is nothing lower to set.
    expect(readContext({ ...usage, usedTokens: 8180, longestImageEdge: 512 }, 32, 9).advice).not.toMatch(/Longest image edge/);
  });

  it('offers whole tiles up to the model default', () => {
    expect(longestEdgeChoices(512, 2048)).toEqual([512, 1024, 1536, 2048]);
    expect(longestEdgeChoices(64, 128)).toEqual([64, 128]);
    expect(longestEdgeChoices(512, 1364)).toEqual([512, 1024, 1364]);
  });
});

describe('the sample pictures', () => {
  it('parses the committed list and refuses entries that are not plain file names', () => {
    expect(parseSampleList([{ file: 'shapes.png', description: 'Shapes' }, { file: 'table.png' }])).toEqual([
      { file: 'shapes.png', description: 'Shapes' },
      { file: 'table.png', description: '' },
    ]);
    expect(() => parseSampleList({ file: 'x.png' })).toThrow(/must be a list/);
    expect(() => parseSampleList([{ file: '../secret.png' }])).toThrow(/entry 1 needs a plain file name/);
    expect(() => parseSampleList([{ description: 'no file' }])).toThrow(/entry 1/);
  });

  it('fetches every listed picture as a file, in order', async () => {
    const served: Record<string, Response> = {
      'http://app/samples/samples.json': Response.json([{ file: 'b.png' }, { file: 'a.png' }]),
      'http://app/samples/b.png': new Response(new Blob(['B'], { type: 'image/png' })),
      'http://app/samples/a.png': new Response(new Blob(['A'], { type: 'image/png' })),
    };
    const fetchFile = (async (url: URL) => served[url.href] ?? new Response('missing', { status: 404 })) as typeof fetch;
    const files = await fetchSampleImages('http://app/samples/', fetchFile);
    expect(files.map((f) => [f.name, f.type])).toEqual([
      ['b.png', 'image/png'],
      ['a.png', 'image/png'],
    ]);
    await expect(fetchSampleImages('http://app/other/', fetchFile)).rejects.toThrow(/HTTP 404/);
  });
});

describe("one picture's attention", () => {
  const layout = { rows: 0, cols: 0, tokensPerSide: 2, resizedWidth: 64, resizedHeight: 64 };
  const images: PromptImage[] = [
    { id: 7, name: 'a.png', tiles: 1, imageTokens: 4, firstImageToken: 0, layout },
    { id: 9, name: 'b.png', tiles: 1, imageTokens: 4, firstImageToken: 4, layout },
  ];
  const row = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const snapshot = { layers: 1, heads: 1, weights: [[row]], layout, images };

  it('is the slice of its image tokens', () => {
    const second = pictureAttention(snapshot, 0, 0, 1);
    expect(second?.image.id).toBe(9);
    expect([...(second?.weights ?? [])]).toEqual([4, 5, 6, 7]);
    expect(pictureAttention(snapshot, 0, 0, 2)).toBeNull();
    expect(pictureAttention(snapshot, 1, 0, 0)).toBeNull();
    expect(pictureAttention({ ...snapshot, images: [{ ...images[1], imageTokens: 8 }] }, 0, 0, 0)).toBeNull();
  });

  it("per head, the share of attention on one picture (for the heatmap)", () => {
    const weights = [[Float32Array.from([0.1, 0.1, 0.1, 0.1, 0.2, 0, 0, 0.2]), Float32Array.from([0, 0, 0, 0, 0.5, 0.5, 0, 0])]];
    const two = { ...snapshot, heads: 2, weights };
    const first = pictureAttentionMatrix(two, 0);
    const second = pictureAttentionMatrix(two, 1);
    expect(first.map((row) => row.map((v) => Number(v.toFixed(4))))).toEqual([[0.4, 0]]);
    expect(second.map((row) => row.map((v) => Number(v.toFixed(4))))).toEqual([[0.4, 1]]);
    expect(pictureAttentionMatrix(two, 2)).toEqual([]);
  });
});
