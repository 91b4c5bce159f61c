/**
 * The one-job rule of a chat session: a model load, and one job at a time (a question, a search or a benchmark); a
 * second job is refused with a message for people, never interleaved. Also the wait for a model being re-made on a new
 * device, which questions sit out.
 */

/** The reason a job is aborted with when its GPU device is lost: it did not end by Stop, and must not read so. */
export class DeviceLostInterruption extends Error {
  constructor(readonly deviceReason: string) {
    super(`The GPU device was lost (${deviceReason}).`);
    this.name = 'DeviceLostInterruption';
  }
}

/** The interruption a job's signal was aborted with, if its device was lost. */
export function deviceLostInterruption(signal: AbortSignal): DeviceLostInterruption | null {
  return signal.aborted && signal.reason instanceof DeviceLostInterruption ? signal.reason : null;
}

export class JobGuard {
  private loadController: AbortController | null = null;
  /** The running job; null when idle. */
  private runController: AbortController | null = null;
  /** What the running job is, for the message that refuses a second one. */
  private runningJob = '';
  /** Set while the model is re-made on a new device; questions wait for it. */
  private reloading: Promise<void> | null = null;

  /** Starts a model load: cancels the one running, if any; the caller passes the signal to the loader. */
  beginLoad(): AbortController {
    this.loadController?.abort();
    const controller = new AbortController();
    this.loadController = controller;
    return controller;
  }

  endLoad(controller: AbortController): void {
    if (this.loadController === controller) this.loadController = null;
  }

  cancelLoad(): void {
    this.loadController?.abort();
  }

  /** Throws, with a message for people, when a load or another job runs. */
  checkIdle(what: string): void {
    if (this.loadController && what !== 'loading another model') throw new Error(`A model is loading: wait for it before ${what}.`);
    if (this.runController) throw new Error(`The engine is busy ${this.runningJob}: press Stop or wait for it to finish before ${what}.`);
  }

  /** Aborts the running job; `reason` (e.g. a DeviceLostInterruption) becomes its signal's reason. */
  stop(reason?: unknown): void {
    this.runController?.abort(reason);
  }

  /** Runs `body` as the one job: stop() aborts it, others are refused (checked as `checkedAs`) until it ends. */
  async run<T>(what: string, checkedAs: string, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.checkIdle(checkedAs);
    const controller = new AbortController();
    this.runController = controller;
    this.runningJob = what;
    try {
      return await body(controller.signal);
    } finally {
      if (this.runController === controller) this.runController = null;
    }
  }

  /** Work started while `reload` runs waits for it (see waitForReload). */
  whileReloading(reload: Promise<void>): void {
    this.reloading = reload;
    void reload.finally(() => {
      if (this.reloading === reload) this.reloading = null;
    });
  }

  /** Resolves once a reload after a device loss (if one runs) has finished. */
  async waitForReload(): Promise<void> {
    if (this.reloading) await this.reloading;
  }
}
