import { useEffect, useId, useRef } from 'react';
import type { ModelVideoSampling, VideoProgress, VideoSampling } from '../worker/api';
import type { ShownVideo, VideoOffer } from './hooks/useConversationVideos';
import { frameCaption, progressText, videoFacts } from './video-view';
import './images.css';

/** A video's sampled frames in order, each with its time (as the prompt writes it) and its index in the file. */
export function FrameStrip({ video, compact = false }: { video: ShownVideo; compact?: boolean }) {
  return (
    <ol className={`frame-strip${compact ? ' compact' : ''}`} aria-label={`Sampled frames of ${video.info.name}`} data-testid="frame-strip">
      {video.info.frames.map((frame, i) => {
        const caption = frameCaption(frame);
        return (
          <li key={frame.index} className="strip-frame" data-testid="video-frame" data-frame-index={frame.index} data-frame-time={frame.label}>
            <img src={video.frameUrls[i]} alt={`${video.info.name} at ${caption.time} (${caption.index})`} />
            <span className="frame-time">{caption.time}</span>
            {!compact && <span className="frame-index muted">{caption.index}</span>}
          </li>
        );
      })}
    </ol>
  );
}

interface PendingVideosProps {
  /** The videos that go with the next question, in order. */
  videos: ShownVideo[];
  onRemove: (id: number) => void;
  disabled: boolean;
}

/** The videos waiting for the next question: name, facts, the strip of sampled frames, and Remove. Names as text only. */
export function PendingVideos({ videos, onRemove, disabled }: PendingVideosProps) {
  const list = useRef<HTMLUListElement>(null);
  /** Where a removal was, so the focus goes to the next Remove button instead of the page. */
  const removedAt = useRef<number | null>(null);
  useEffect(() => {
    const index = removedAt.current;
    if (index === null) return;
    removedAt.current = null;
    const buttons = list.current?.querySelectorAll<HTMLButtonElement>('button.remove-video');
    if (buttons && buttons.length > 0) buttons[Math.min(index, buttons.length - 1)].focus();
  }, [videos]);

  if (videos.length === 0) return null;
  return (
    <ul ref={list} className="pending-videos" aria-label="Videos for the next question" data-testid="pending-videos">
      {videos.map((video, index) => (
        <li key={video.info.id} className="pending-video" data-testid="pending-video" data-video-name={video.info.name}>
          <div className="pending-video-head">
            <span className="file-name" data-testid="pending-video-name">
              {video.info.name}
            </span>
            <button
              type="button"
              className="secondary small-button remove-video"
              aria-label={`Remove ${video.info.name}`}
              disabled={disabled}
              onClick={() => {
                removedAt.current = index;
                onRemove(video.info.id);
              }}
            >
              Remove
            </button>
          </div>
          <span className="muted small" data-testid="pending-video-facts">
            {videoFacts(video.info)}
          </span>
          <FrameStrip video={video} />
        </li>
      ))}
    </ul>
  );
}

/** Frames decoded so far of the video being added. */
export function VideoProgressBar({ progress }: { progress: VideoProgress | null }) {
  const id = useId();
  if (!progress) return null;
  return (
    <div className="video-progress" data-testid="video-progress">
      <label htmlFor={id} className="small">
        {progressText(progress)}
      </label>
      <progress id={id} max={Math.max(1, progress.total)} value={progress.stage === 'reading' ? undefined : progress.decoded} />
    </div>
  );
}

/** A video that did not fit the context, with the offer to add only the frames that fit. */
export function VideoFitOffer({ offer, onAccept, onDismiss, disabled }: { offer: VideoOffer | null; onAccept: () => void; onDismiss: () => void; disabled: boolean }) {
  if (!offer) return null;
  return (
    <div className="status warning small video-offer" role="status" data-testid="video-offer">
      <p>{offer.message}</p>
      {offer.framesThatFit > 0 && (
        <button type="button" className="small-button" data-testid="video-fit-button" disabled={disabled} onClick={onAccept}>
          Add it with {offer.framesThatFit} {offer.framesThatFit === 1 ? 'frame' : 'frames'} (max frames {offer.framesThatFit} for this video)
        </button>
      )}
      <button type="button" className="secondary small-button" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

interface VideoSamplingFieldsProps {
  sampling: VideoSampling;
  /** The model's own (video_sampling), shown beside the fields. */
  modelDefault: ModelVideoSampling;
  onChange: (sampling: VideoSampling) => void;
  disabled: boolean;
}

/** Frames per second and maximum frames for the next videos added (the waiting ones keep theirs). */
export function VideoSamplingFields({ sampling, modelDefault, onChange, disabled }: VideoSamplingFieldsProps) {
  const ids = useId();
  return (
    <fieldset className="settings-fieldset video-sampling" data-testid="video-sampling" disabled={disabled}>
      <legend>Video sampling</legend>
      <span className="field inline-field">
        <label htmlFor={`${ids}-fps`}>Frames per second</label>
        <input
          id={`${ids}-fps`}
          data-testid="video-fps"
          type="number"
          min={0.1}
          step={0.1}
          value={sampling.fps}
          onChange={(event) => {
            const fps = Number(event.target.value);
            if (Number.isFinite(fps) && fps > 0) onChange({ ...sampling, fps });
          }}
        />
      </span>
      <span className="field inline-field">
        <label htmlFor={`${ids}-max`}>Max frames</label>
        <input
          id={`${ids}-max`}
          data-testid="video-max-frames"
          type="number"
          min={1}
          step={1}
          value={sampling.maxFrames}
          onChange={(event) => {
            const maxFrames = Number(event.target.value);
            if (Number.isInteger(maxFrames) && maxFrames >= 1) onChange({ ...sampling, maxFrames });
          }}
        />
      </span>
      <span className="muted small">
        Model default: {modelDefault.fps} fps, at most {modelDefault.maxFrames} frames (each one {modelDefault.frameSize} px tile). Applies to videos added next.
      </span>
    </fieldset>
  );
}
