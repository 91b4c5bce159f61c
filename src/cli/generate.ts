/**
 * `npm run cli -- generate --model DIR_OR_URL [--image FILE ...] --prompt TEXT [options]`: runs the WebGPU engine
 * through dawn.node and prints the answer, or with --json one object with the answer and its measurements.
 * `--conversation FILE` runs several turns (each with its own pictures) in one process, through one ChatSession, so
 * later turns reuse the pictures' vision-tower features. `--video FILE` asks about videos (ffmpeg reads them,
 * generate-video.ts); `--dry-run` runs only the processor and prints the prompt it makes.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { budgetPolicies, defaultBudgetParams, validateBudgetParams, type BudgetParams, type BudgetPolicy } from '../sparsemm/budgets';
import { parseScoreFile } from '../sparsemm/score-file';
import type { GenerateResult } from '../engine/model';
import { ContextOverflowError } from '../session/chat-session';
import { budgetOptions, budgetParamsOption, commandOptions, integerOption, modelPromptOptions, numberOption, readCommandInputs, readText, reportUsageError, UsageError, parseCommandArgs, weightFormatOption, weightsHelp, weightsOption } from './args';
import type { WeightFormat } from '../model-io/quantize';
import { cliChatSession, ImageDecodeError, openNodeSession, readImageFile } from './node-session';
import type { RawImage } from '@huggingface/transformers';
import { GenerateDump } from './dump';
import { errorMessage } from '../errors';
import type { PreparedInputs } from '../model-io/processor';
import { mixingMessage, probeTurnVideos, runDryRun, samplingFor, videoReports, videoSamplingOption, type VideoReport, type VideoSamplingOverrides } from './generate-video';
import { readVideoInput } from './video-file';

const help = `Usage: npm run cli -- generate --model DIR_OR_URL --prompt TEXT [--image FILE ... | --video FILE ...] [options]
       npm run cli -- generate --model DIR_OR_URL --conversation FILE [options]

Runs SmolVLM (Idefics3) in our WGSL kernels on dawn.node and prints the answer.

Options:
  --model M           model folder, http(s) base URL, or hub id (e.g. HuggingFaceTB/SmolVLM-256M-Instruct)
  --image FILE        image (PNG, JPEG, WebP), more than once for several (in order, one user turn); omitted:
                      a text-only prompt. Among several, one that does not decode is named and left out
  --video FILE        video (MP4, WebM, ... anything Debian's ffmpeg reads), more than once for several (SmolVLM2
                      models; a question holds pictures or videos, not both). Frames are sampled as transformers does
                      (VIDEO.md: fps, max frames, 1 s skipped at both ends of a long clip), each one 512 px tile
  --fps F             video frames sampled per second (default the model's video_sampling.fps, 1)
  --max-frames N      most frames sampled per video (default the model's video_sampling.max_frames, 64)
  --dry-run           run only the processor (config, tokenizer and processor files; no weights read, no GPU) and print
                      the prompt: with --json {prompt, promptText, promptTokens, imageTokens, images, videos: [{file,
                      nativeFps, totalFrames, durationSeconds, frameIndices, timestamps, imageTokens}]}
  --prompt TEXT       the question
  --conversation FILE a JSON list of turns [{"text": "...", "images": ["a.png", ...]}, ...] (or "videos": [...];
                      paths relative to the file) asked one after another in one process; later turns reuse the
                      image and frame features.
                      With --json: {"turns": [report, ...]}
  --longest-edge PX   longest image edge the processor resizes to (default the model's own); lower = fewer tiles
  --max-new-tokens N  tokens to generate at most (default 64)
  --policy P          KV-cache policy: ${budgetPolicies.join(' | ')} (default full)
  --budget B          average tokens kept per KV head, window included (default ${defaultBudgetParams.budget})
  --window W          recent prompt tokens every head keeps (default ${defaultBudgetParams.window})
  --ratio R           sparsemm: share of the budget every head gets (default ${defaultBudgetParams.ratio})
  --scores FILE       visual-head scores {"<layer>-<head>": [...]} for sparsemm (omitted: uniform scores, with a warning)
  --temperature T     0 = greedy (default 0)
  --top-p P           nucleus sampling threshold when T > 0 (default 0.9)
  --seed S            sampling seed (default 0)
${weightsHelp}  --dump DIR          write the model's inputs and per-step logits into DIR (.npy + manifest.json, see src/cli/dump.ts)
                      for scripts/parity/transformers_parity.py; slows decoding (one logits read-back per token)
  --json              print {text, tokenIds, promptTokens, imageTokens, images: [{file, tiles, imageTokens}], videos,
                      promptText (the chat-templated prompt after the picture and video expansion),
                      prefillMs, timeToFirstTokenMs, decodeMsPerToken, kvBytes, weightBytes, weightFormat, ...}
  -h, --help          this text
`;

/** One user turn: the question and the pictures or videos that go before it. */
export interface ConversationTurn {
  text: string;
  images: string[];
  videos: string[];
}

interface GenerateArgs {
  model: string;
  /** The turns to ask: one for --prompt/--image, the file's for --conversation. */
  turns: ConversationTurn[];
  /** Whether the turns came from --conversation (the JSON report then lists them). */
  conversation: boolean;
  longestEdge: number | null;
  maxNewTokens: number;
  policy: BudgetPolicy;
  params: BudgetParams;
  scoresPath: string | null;
  sampling: { temperature: number; topP: number; seed: number } | undefined;
  json: boolean;
  dumpDir: string | null;
  weightFormat: WeightFormat;
  /** --fps / --max-frames (null: the model's video_sampling). */
  videoSampling: VideoSamplingOverrides;
  dryRun: boolean;
}

export function parseGenerateArgs(args: string[]): GenerateArgs | 'help' {
  const values = commandOptions(args, {
    ...modelPromptOptions,
    video: { type: 'string', multiple: true },
    fps: { type: 'string' },
    'max-frames': { type: 'string' },
    'dry-run': { type: 'boolean' },
    conversation: { type: 'string' },
    'longest-edge': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    ...budgetOptions,
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    dump: { type: 'string' },
    ...weightsOption,
  });
  if (values === 'help') return 'help';
  if (!values.model) throw new UsageError('--model is required');
  let turns: ConversationTurn[];
  if (values.conversation !== undefined) {
    if (values.prompt !== undefined || values.image !== undefined || values.video !== undefined) {
      throw new UsageError('--conversation takes the questions, images and videos from its file: leave out --prompt, --image and --video');
    }
    if (values.dump !== undefined) throw new UsageError('--dump records one prompt: use it without --conversation');
    if (values['dry-run']) throw new UsageError('--dry-run prepares one prompt: use it without --conversation');
    turns = readConversation(values.conversation);
  } else {
    if (values.prompt === undefined || values.prompt.trim() === '') throw new UsageError('--prompt is required and must not be empty');
    turns = [{ text: values.prompt, images: values.image ?? [], videos: values.video ?? [] }];
    if (turns[0].images.length > 0 && turns[0].videos.length > 0) throw new UsageError(mixingMessage);
  }
  if (values['dry-run'] && values.dump !== undefined) throw new UsageError('--dry-run reads no weights and generates nothing: leave out --dump');
  const videoSampling = videoSamplingOption(values.fps, values['max-frames']);
  if ((videoSampling.fps !== null || videoSampling.maxFrames !== null) && turns.every((turn) => turn.videos.length === 0)) {
    throw new UsageError('--fps and --max-frames sample videos: add --video FILE');
  }
  const longestEdge = values['longest-edge'] === undefined ? null : integerOption('longest-edge', values['longest-edge']);
  const policy = values.policy ?? 'full';
  if (!(budgetPolicies as readonly string[]).includes(policy)) throw new UsageError(`--policy must be one of ${budgetPolicies.join(', ')}, got "${policy}"`);
  const params = budgetParamsOption(values);
  try {
    validateBudgetParams(params);
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  const maxNewTokens = integerOption('max-new-tokens', values['max-new-tokens'], 64);
  if (maxNewTokens < 1) throw new UsageError('--max-new-tokens must be at least 1');
  const temperature = numberOption('temperature', values.temperature, 0);
  if (temperature < 0) throw new UsageError('--temperature must be >= 0');
  const topP = numberOption('top-p', values['top-p'], 0.9);
  if (!(topP > 0 && topP <= 1)) throw new UsageError('--top-p must be in (0, 1]');
  return {
    model: values.model,
    turns,
    conversation: values.conversation !== undefined,
    longestEdge,
    maxNewTokens,
    policy: policy as BudgetPolicy,
    params,
    scoresPath: values.scores ?? null,
    sampling: temperature > 0 ? { temperature, topP, seed: integerOption('seed', values.seed, 0) } : undefined,
    json: values.json === true,
    dumpDir: values.dump ?? null,
    weightFormat: weightFormatOption(values.weights),
    videoSampling,
    dryRun: values['dry-run'] === true,
  };
}

/**
 * A conversation file: a JSON list of turns, each {"text": "question", "images": ["path", ...]} (images optional,
 * paths relative to the file). Checked whole before the model loads: bad JSON or a missing image is a UsageError.
 */
export function readConversation(path: string): ConversationTurn[] {
  const text = readText(path, 'conversation file');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the conversation file ${path} is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const shape = 'a JSON list of turns like [{"text": "What is this?", "images": ["a.png"]}, {"text": "And the colours?"}] (or "videos": ["clip.mp4"])';
  if (!Array.isArray(value) || value.length === 0) throw new UsageError(`the conversation file ${path} must be ${shape}`);
  const base = dirname(resolve(path));
  return value.map((turn: unknown, index): ConversationTurn => {
    const where = `turn ${index + 1} of ${path}`;
    if (typeof turn !== 'object' || turn === null || Array.isArray(turn)) throw new UsageError(`${where} is not an object; the file must be ${shape}`);
    const { text: question, images, videos } = turn as { text?: unknown; images?: unknown; videos?: unknown };
    if (typeof question !== 'string' || question.trim() === '') throw new UsageError(`${where} needs a non-empty "text"`);
    const paths = (list: unknown, key: 'images' | 'videos', what: string): string[] => {
      if (list !== undefined && (!Array.isArray(list) || list.some((p) => typeof p !== 'string'))) {
        throw new UsageError(`${where}: "${key}" must be a list of file paths`);
      }
      return ((list as string[] | undefined) ?? []).map((given) => {
        const file = resolve(base, given);
        if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`${where} names the ${what} "${given}", but ${file} does not exist`);
        return file;
      });
    };
    const parsed = { text: question, images: paths(images, 'images', 'image'), videos: paths(videos, 'videos', 'video') };
    if (parsed.images.length > 0 && parsed.videos.length > 0) throw new UsageError(`${where}: ${mixingMessage}`);
    return parsed;
  });
}

/** Decodes each turn's pictures; among several, one that does not decode is named on stderr and left out. */
async function readTurnImages(turns: ConversationTurn[]): Promise<{ file: string; image: RawImage }[][]> {
  const decoded: { file: string; image: RawImage }[][] = [];
  for (const turn of turns) {
    const kept: { file: string; image: RawImage }[] = [];
    for (const file of turn.images) {
      try {
        kept.push({ file, image: await readImageFile(file) });
      } catch (error) {
        if (!(error instanceof ImageDecodeError) || turn.images.length === 1) throw error;
        process.stderr.write(`warning: ${error.message}: left out, the other images are used\n`);
      }
    }
    if (turn.images.length > 1 && kept.length === 0) throw new UsageError(`none of the images ${turn.images.join(', ')} could be decoded`);
    decoded.push(kept);
  }
  return decoded;
}

export interface GenerateReport extends Omit<GenerateResult, 'keptPerHead' | 'decodeStepMs'> {
  text: string;
  /** The question of this turn. */
  prompt: string;
  /** Every picture of the prompt in order (earlier turns' first), with its tiles and image tokens. */
  images: { file: string; tiles: number; imageTokens: number }[];
  /** Every video of the prompt in order: its track facts, the sampled frames and their image tokens. */
  videos: VideoReport[];
  /** The chat-templated prompt after every picture and video entry was expanded, before tokenization. */
  promptText: string;
  /** Pictures that went through the vision tower for this turn, and ones whose features an earlier turn made. */
  imagesEncoded: number;
  imagesReused: number;
  /** From the question to the first token (image processing, vision tower, prefill). */
  timeToFirstTokenMs: number;
  policy: BudgetPolicy;
  budget: number | null;
  /** Average prompt tokens kept per KV head. */
  keptTokensPerHead: number;
  /** True when every model file came from the cache (a second load makes no network request). */
  modelFromCache: boolean;
  /** The weight format the model was loaded in (--weights); weightBytes are its GPU bytes. */
  weightFormat: WeightFormat;
  warnings: string[];
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('generate', help, () => parseGenerateArgs(args));
  if (!options) return;
  const { model: modelPath, turns, conversation, longestEdge, maxNewTokens, policy, params, scoresPath, sampling, json, dumpDir, weightFormat, videoSampling, dryRun } = options;
  const inputs = await readCommandInputs('generate', async () => ({
    turnImages: await readTurnImages(turns),
    turnVideos: await probeTurnVideos(turns),
    scoreText: scoresPath ? readText(scoresPath, 'score file') : null,
  }));
  if (!inputs) return;
  const { turnImages, turnVideos, scoreText } = inputs;
  if (dryRun) {
    await readCommandInputs('generate', () =>
      runDryRun({ model: modelPath, prompt: turns[0].text, images: turnImages[0], videos: turnVideos[0], overrides: videoSampling, longestEdge, json }),
    );
    return;
  }

  const node = await openNodeSession(modelPath, weightFormat);
  try {
    const session = cliChatSession(node);
    if (longestEdge !== null) {
      try {
        session.setLongestImageEdge(longestEdge);
      } catch (error) {
        reportUsageError('generate', error);
        return;
      }
    }
    if (scoreText !== null && policy === 'sparsemm') await session.useHeadScores(parseScoreFile(scoreText), 'import');
    const askOptions = { policy, budget: params.budget, window: params.window, ratio: params.ratio, maxNewTokens, sampling };
    const { warnings } = session.policyFor(askOptions);
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);

    const reports: GenerateReport[] = [];
    const allFiles: string[] = [];
    // Refuses a model without a video path (a UsageError) before any video is decoded.
    const videoSettings = turnVideos.some((videos) => videos.length > 0) ? samplingFor(node.processor, videoSampling) : null;
    for (const [index, turn] of turns.entries()) {
      for (const { file, image } of turnImages[index]) {
        session.addImage(image, file);
        allFiles.push(file);
      }
      for (const facts of turnVideos[index]) {
        if (!videoSettings) throw new Error('The video sampling settings were not read.');
        session.addVideo(await readVideoInput(facts, videoSettings, node.processor.videoSampling?.frameSize ?? node.processor.tileSize));
      }
      if (conversation && !json) process.stdout.write(`${index > 0 ? '\n' : ''}> ${turn.text}\n`);
      let printed = '';
      // Made once the prompt is prepared (the dump records the processor's inputs).
      const dump: { current: GenerateDump | null } = { current: null };
      const prepared: { current: PreparedInputs | null } = { current: null };
      const { config } = node.loaded;
      const { generation: result, result: answer } = await session.answer(turn.text, {
        ...askOptions,
        onPrepared: (inputs) => {
          prepared.current = inputs;
          if (dumpDir === null) return;
          dump.current = new GenerateDump(dumpDir, {
            model: node.loaded.sourceId, prompt: turn.text, image: allFiles[0] ?? null, policy, greedy: sampling === undefined,
            imageTokenId: config.imageTokenId, imageSeqLen: config.imageSeqLen, vocabSize: config.text.vocabSize,
          }, inputs);
        },
        // Only with --dump: reading the logits back costs a copy per step.
        onLogits: dumpDir === null ? undefined : (logits, step) => dump.current?.onLogits(logits, step),
      }, (event) => {
        if (json) return;
        // Stream the text as it grows (multi-byte characters may span tokens, so a rewritten tail is not printed twice).
        if (event.text.startsWith(printed)) process.stdout.write(event.text.slice(printed.length));
        printed = event.text;
      });
      const text = node.processor.decode(result.tokenIds, { skipSpecialTokens: true });
      dump.current?.write({ tokenIds: result.tokenIds, text, stoppedBy: result.stoppedBy });
      const keptAll = result.keptPerHead.flat();
      const { keptPerHead: _kept, decodeStepMs: _steps, ...measurements } = result;
      const report: GenerateReport = {
        text,
        prompt: turn.text,
        ...measurements,
        // Pictures only (a video's frames are PromptImages too, listed under videos).
        images: answer.images.filter((image) => !image.video).map((image, i) => ({ file: allFiles[i] ?? image.name, tiles: image.tiles, imageTokens: image.imageTokens })),
        videos: videoReports(prepared.current),
        promptText: prepared.current?.promptText ?? '',
        imagesEncoded: answer.metrics.imagesEncoded,
        imagesReused: answer.metrics.imagesReused,
        timeToFirstTokenMs: answer.metrics.timeToFirstTokenMs,
        policy,
        budget: policy === 'full' ? null : params.budget,
        keptTokensPerHead: keptAll.reduce((a, b) => a + b, 0) / keptAll.length,
        modelFromCache: node.loaded.fromCache,
        weightFormat: node.model.weightFormat,
        warnings,
      };
      reports.push(report);
      if (!json) {
        process.stdout.write('\n');
        const pictures = [
          ...report.images.map((image) => `${image.file}: ${image.tiles} tiles, ${image.imageTokens} tokens`),
          ...report.videos.map((video) => `${video.file}: ${video.frameIndices.length} frames, ${video.imageTokens} tokens`),
        ].join('; ');
        process.stderr.write(
          `[${result.promptTokens} prompt tokens (${result.imageTokens} image${pictures ? `: ${pictures}` : ''}), ${result.tokenIds.length} generated, ` +
            `first token after ${report.timeToFirstTokenMs.toFixed(0)} ms (${report.imagesEncoded} images encoded, ${report.imagesReused} reused), ` +
            `prefill ${result.prefillMs.toFixed(0)} ms, decode ${result.decodeMsPerToken.toFixed(1)} ms/token, ` +
            `KV ${(result.kvBytes / 2 ** 20).toFixed(2)} MiB (full cache ${(result.fullCacheKvBytes / 2 ** 20).toFixed(2)} MiB), policy ${policy}]\n`,
        );
      }
    }
    if (json) process.stdout.write(`${JSON.stringify(conversation ? { turns: reports } : reports[0])}\n`);
  } catch (error) {
    // A prompt over the context, a video ffmpeg cannot read or a model without a video path: exit code 2.
    if (!(error instanceof ContextOverflowError || error instanceof UsageError)) throw error;
    reportUsageError('generate', error);
  } finally {
    node.destroy();
  }
}

