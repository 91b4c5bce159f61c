import { useCallback, useEffect, useRef, useState } from 'react';
import type { ModelVideoSampling, VideoProgress, VideoSampling } from '../../worker/api';
import { errorMessage } from '../../errors';
import { getEngine, videoProgressProxy } from '../engine-client';
import { refusedFilesText } from '../format';
import type { TurnVideo } from '../transcript';

/** A video of the conversation with the object URLs of its frame thumbnails (revoked when the video goes). */
export type ShownVideo = TurnVideo;

/** A video that did not fit the context: the file is kept here so that it can be added with fewer frames. */
export interface VideoOffer {
  file: File;
  message: string;
  framesThatFit: number;
}

/** Where the committed sample videos are served (public/samples, beside the app). */
const samplesBase = (): string => new URL('samples/', document.baseURI).href;

/** Fetches the first sample video of samples/videos.json as a File. */
async function fetchSampleVideo(): Promise<File> {
  const list = await fetch(new URL('videos.json', samplesBase()));
  if (!list.ok) throw new Error(`The sample video list could not be loaded (HTTP ${list.status}).`);
  const entries = (await list.json()) as { file?: unknown }[];
  const file = entries[0]?.file;
  if (typeof file !== 'string' || !/^[\w.-]+$/.test(file)) throw new Error('samples/videos.json must list {"file": "<plain name>"} entries.');
  const response = await fetch(new URL(file, samplesBase()));
  if (!response.ok) throw new Error(`The sample ${file} could not be loaded (HTTP ${response.status}).`);
  const blob = await response.blob();
  return new File([blob], file, { type: blob.type || 'video/mp4' });
}

/**
 * The conversation's videos as the worker keeps them: adding files (with a progress bar while their frames decode),
 * the sampling settings for the next ones (the model's video_sampling by default), removing a waiting one, and the
 * offer to add a video that overflowed the context with the frames that fit. `onChanged` re-reads what the videos
 * change elsewhere (the context meter); `answerTokens` (max new tokens) is kept free when a video's size is checked.
 */
export function useConversationVideos(showError: (message: string) => void, modelLoaded: boolean, onChanged: () => Promise<void>, answerTokens: number) {
  const [videos, setVideos] = useState<ShownVideo[]>([]);
  const [modelSampling, setModelSampling] = useState<ModelVideoSampling | null>(null);
  const [sampling, setSampling] = useState<VideoSampling | null>(null);
  const [progress, setProgress] = useState<VideoProgress | null>(null);
  const [offer, setOffer] = useState<VideoOffer | null>(null);
  const urls = useRef(new Map<number, string[]>());

  const report = useCallback((error: unknown) => showError(errorMessage(error)), [showError]);

  /** Re-reads the videos; thumbnails of videos gone are revoked. */
  const refresh = useCallback(async () => {
    const list = await getEngine().listVideos();
    const live = new Set(list.map((info) => info.id));
    for (const [id, owned] of urls.current) {
      if (!live.has(id)) {
        owned.forEach((url) => URL.revokeObjectURL(url));
        urls.current.delete(id);
      }
    }
    setVideos(
      list.map((info) => {
        let frameUrls = urls.current.get(info.id);
        if (!frameUrls) {
          frameUrls = info.frames.map((frame) => URL.createObjectURL(frame.thumbnail));
          urls.current.set(info.id, frameUrls);
        }
        return { info, frameUrls };
      }),
    );
  }, []);

  // The sampling defaults and the videos' tokens follow the model.
  useEffect(() => {
    getEngine()
      .videoSampling()
      .then((defaults) => {
        setModelSampling(defaults);
        setSampling(defaults && { fps: defaults.fps, maxFrames: defaults.maxFrames });
      }, report);
    void refresh().catch(report);
  }, [modelLoaded, refresh, report]);

  useEffect(() => {
    const owned = urls.current;
    return () => {
      for (const list of owned.values()) list.forEach((url) => URL.revokeObjectURL(url));
      owned.clear();
    };
  }, []);

  const add = useCallback(
    (files: File[], override?: VideoSampling) => {
      const settings = override ?? sampling;
      if (files.length === 0) return;
      if (!settings) {
        showError(`${files.map((file) => `"${file.name}"`).join(', ')}: the loaded model has no video path. Load SmolVLM2 (a -Video-Instruct model) to ask about videos.`);
        return;
      }
      setOffer(null);
      setProgress({ name: files[0].name, stage: 'reading', decoded: 0, total: 0 });
      getEngine()
        .addVideos(
          files.map((file) => ({ file, name: file.name })),
          { ...settings, answerTokens },
          videoProgressProxy((next) => setProgress(next)),
        )
        .then(async (result) => {
          await Promise.all([refresh(), onChanged()]);
          const overflow = result.rejected.find((r) => r.framesThatFit !== undefined);
          const file = overflow && files.find((f) => f.name === overflow.name);
          if (overflow && file) setOffer({ file, message: overflow.message, framesThatFit: overflow.framesThatFit ?? 0 });
          const others = result.rejected.filter((r) => r !== overflow);
          if (others.length > 0) {
            showError(refusedFilesText(others.map((r) => r.message), result.added.length, ['video', 'videos']));
          }
        }, report)
        .finally(() => setProgress(null));
    },
    [sampling, answerTokens, refresh, onChanged, report, showError],
  );

  const acceptOffer = useCallback(() => {
    if (!offer || !sampling) return;
    add([offer.file], { ...sampling, maxFrames: offer.framesThatFit });
  }, [offer, sampling, add]);

  const addSample = useCallback(() => {
    fetchSampleVideo().then((file) => add([file]), report);
  }, [add, report]);

  const remove = useCallback(
    (id: number) => {
      getEngine()
        .removeVideo(id)
        .then(() => Promise.all([refresh(), onChanged()]), report);
    },
    [refresh, onChanged, report],
  );

  return {
    videos,
    modelSampling,
    sampling,
    setSampling,
    progress,
    busy: progress !== null,
    offer,
    dismissOffer: () => setOffer(null),
    acceptOffer,
    refresh,
    add,
    addSample,
    remove,
  };
}
