import { useCallback, useEffect, useRef, useState } from 'react';
import type { ChatImageInfo, ContextUsage } from '../../worker/api';
import { errorMessage } from '../../errors';
import { getEngine } from '../engine-client';
import { refusedFilesText } from '../format';
import { fetchSampleImages } from '../sample-images';

/** A picture of the conversation with the object URL of its thumbnail (revoked when the picture goes). */
export interface ShownImage {
  info: ChatImageInfo;
  url: string;
}

/** How long typing pauses before the context meter counts the question again. */
const typingPauseMs = 250;

/** Where the committed samples are served (public/samples, beside the app). */
const samplesBase = (): string => new URL('samples/', document.baseURI).href;

/**
 * The conversation's pictures and context as the worker keeps them: adding files (a drop, paste or pick of several,
 * or the samples), removing a pending one, the longest-edge setting, the context meter's numbers. Every change goes
 * to the worker, and the lists come back from it (the worker is the one source).
 */
export function useConversationImages(showError: (message: string) => void, modelLoaded: boolean) {
  const [images, setImages] = useState<ShownImage[]>([]);
  const [usage, setUsage] = useState<ContextUsage | null>(null);
  const [busy, setBusy] = useState(false);
  const urls = useRef(new Map<number, string>());
  /** The question being typed: the meter counts it too, as the check at send time will. */
  const question = useRef('');
  /** Numbers the usage requests, so that an older answer never replaces a newer one. */
  const usageRequests = useRef(0);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  /** Re-reads the pictures and the usage; thumbnails of pictures gone are revoked. */
  const refresh = useCallback(async () => {
    const engine = getEngine();
    const request = ++usageRequests.current;
    const [list, nextUsage] = await Promise.all([engine.listImages(), engine.contextUsage(question.current)]);
    const live = new Set(list.map((info) => info.id));
    for (const [id, url] of urls.current) {
      if (!live.has(id)) {
        URL.revokeObjectURL(url);
        urls.current.delete(id);
      }
    }
    const shown = list.map((info) => {
      let url = urls.current.get(info.id);
      if (!url) {
        url = URL.createObjectURL(info.thumbnail);
        urls.current.set(info.id, url);
      }
      return { info, url };
    });
    setImages(shown);
    if (request === usageRequests.current) setUsage(nextUsage);
  }, []);

  /** Follows the question box, re-reading the usage once typing pauses. */
  const setQuestion = useCallback((text: string) => {
    if (text === question.current) return;
    question.current = text;
    if (typingTimer.current !== null) clearTimeout(typingTimer.current);
    typingTimer.current = setTimeout(() => {
      typingTimer.current = null;
      const request = ++usageRequests.current;
      getEngine()
        .contextUsage(question.current)
        .then((next) => request === usageRequests.current && setUsage(next))
        .catch(() => undefined); // the meter keeps its last reading; the send-time check still counts the question
    }, typingPauseMs);
  }, []);

  const report = useCallback((error: unknown) => showError(errorMessage(error)), [showError]);

  // The tokens per picture and the context depend on the model.
  useEffect(() => {
    void refresh().catch(report);
  }, [modelLoaded, refresh, report]);

  // Every thumbnail (and a pending usage request) goes with the page.
  useEffect(() => {
    const owned = urls.current;
    const timer = typingTimer;
    return () => {
      for (const url of owned.values()) URL.revokeObjectURL(url);
      owned.clear();
      if (timer.current !== null) clearTimeout(timer.current);
    };
  }, []);

  const addFiles = useCallback(
    (files: File[]) => {
      if (files.length === 0) return;
      setBusy(true);
      getEngine()
        .addImages(files.map((file) => ({ file, name: file.name })))
        .then(async (result) => {
          await refresh();
          if (result.rejected.length > 0) {
            showError(refusedFilesText(result.rejected.map((r) => r.message), result.added.length, ['picture', 'pictures']));
          }
        }, report)
        .finally(() => setBusy(false));
    },
    [refresh, report, showError],
  );

  const addSamples = useCallback(() => {
    setBusy(true);
    fetchSampleImages(samplesBase())
      .then(
        (files) => {
          setBusy(false);
          addFiles(files);
        },
        (error: unknown) => {
          setBusy(false);
          report(error);
        },
      );
  }, [addFiles, report]);

  const remove = useCallback(
    (id: number) => {
      getEngine()
        .removeImage(id)
        .then(() => refresh(), report);
    },
    [refresh, report],
  );

  /** Every picture waiting for the next question, one removal each (the worker refuses while a job runs). */
  const removeAll = useCallback(() => {
    const waiting = images.filter((image) => !image.info.sent).map((image) => image.info.id);
    const engine = getEngine();
    waiting
      .reduce<Promise<unknown>>((previous, id) => previous.then(() => engine.removeImage(id)), Promise.resolve())
      .catch(report)
      .finally(() => void refresh().catch(report));
  }, [images, refresh, report]);

  const setLongestEdge = useCallback(
    (edge: number | null) => {
      getEngine()
        .setLongestImageEdge(edge)
        .then(() => refresh(), report);
    },
    [refresh, report],
  );

  return { images, usage, busy, refresh, addFiles, addSamples, remove, removeAll, setLongestEdge, setQuestion };
}
