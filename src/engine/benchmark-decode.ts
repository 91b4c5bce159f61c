/**
 * The benchmark's decode rounds: every live run (a weight format x policy cache of one prompt length) decodes one step
 * in turn, round after round, through its own DecodeStream, with up to `lookahead` steps submitted beyond the token
 * being read back (0: the step-by-step loop). The token stays on the GPU as in generate, so what is timed is what an
 * answer costs. Per measured step: GPU time from timestamp queries around the step (wall clock between tokens read
 * back where the adapter has no timestamp-query), the GPU's idle gap since the previous step ended, and the CPU time
 * to record and submit the step.
 */
import { DecodeStream, type StreamedToken } from './decode-stream';
import { kvBytesRead } from './benchmark-bytes';
import type { LiveRun } from './benchmark-cache';
import type { GpuContext } from './gpu';

export interface DecodeRoundsOptions {
  promptLen: number;
  /** Rounds in all (warm-up included): each run's cache has room for this many decode steps. */
  rounds: number;
  warmupSteps: number;
  lookahead: number;
  /** Time each step with timestamp queries (else wall clock between tokens). */
  timestamps: boolean;
  /** The token every run starts from (a synthetic prompt's last token). */
  startToken: number;
  checkCancel: () => void;
  onRound: (round: number) => void;
}

interface Submitted {
  run: LiveRun;
  stream: DecodeStream;
  round: number;
  dispatches: number;
  kvRead: number;
}

export async function decodeRounds(ctx: GpuContext, live: readonly LiveRun[], options: DecodeRoundsOptions): Promise<void> {
  const { promptLen, rounds, warmupSteps, lookahead, timestamps, startToken } = options;
  const streams = live.map((run) => {
    const stream = new DecodeStream(run.model, run.cache, { promptLength: promptLen, maxPending: lookahead + 2, timestamps });
    stream.startFrom(startToken);
    return stream;
  });
  const queue: Submitted[] = [];
  // The token read before this one, in submission (= GPU queue) order.
  let previous: StreamedToken | null = null;
  const readOldest = async (): Promise<void> => {
    const head = queue.shift() as Submitted;
    const got = await head.stream.next();
    const run = head.run;
    if (head.round >= warmupSteps) {
      const sincePrevious = previous ? got.readAtMs - previous.readAtMs : Number.NaN;
      const gpuMs = got.gpuStartMs !== null && got.gpuEndMs !== null ? got.gpuEndMs - got.gpuStartMs : Number.NaN;
      const stepMs = timestamps ? gpuMs : sincePrevious;
      if (Number.isFinite(stepMs)) run.stepMs.push(stepMs);
      if (Number.isFinite(sincePrevious)) run.wallMs.push(sincePrevious);
      if (previous?.gpuEndMs != null && got.gpuStartMs !== null) run.idleMs.push(Math.max(0, got.gpuStartMs - previous.gpuEndMs));
      run.recordMs.push(got.recordMs);
      run.dispatches = head.dispatches;
      run.kvReadPerStep.push(head.kvRead);
    }
    run.step += 1;
    previous = got;
  };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [index, run] of live.entries()) {
        options.checkCancel();
        while (queue.length > lookahead) await readOldest();
        const dispatchesBefore = ctx.dispatchCount;
        streams[index].submitStep();
        const dispatches = ctx.dispatchCount - dispatchesBefore;
        // What this step's attention read: every head's kept prompt rows plus the tokens appended so far, this one included.
        const kvRead = kvBytesRead(run.cache.layout.keptPerHead.map((_, layer) => run.cache.lengths(layer)), run.cache.layout.headDim);
        queue.push({ run, stream: streams[index], round, dispatches, kvRead });
      }
      options.onRound(round);
    }
    while (queue.length > 0) await readOldest();
  } finally {
    for (const stream of streams) {
      if (stream.pendingCount > 0) await stream.discardPending().catch(() => undefined);
      stream.destroy();
    }
  }
}
