// The chat's video text and file sorting (src/ui/video-view.ts): which dropped files go the video way, and what the
// strip, the facts line and the progress bar say; and the alert for files refused at once (src/ui/format.ts).
import { describe, expect, it } from 'vitest';
import type { ChatVideoInfo } from '../../src/worker/api';
import { refusedFilesText } from '../../src/ui/format';
import { formatDuration, formatFps, frameCaption, isVideoFile, progressText, splitMediaFiles, videoFacts } from '../../src/ui/video-view';

describe('pictures and videos dropped together', () => {
  it('go by type, or by extension when the browser gave no type; order is kept within each kind', () => {
    const files = [
      { name: 'a.png', type: 'image/png' },
      { name: 'clip.mp4', type: 'video/mp4' },
      { name: 'b.jpg', type: 'image/jpeg' },
      { name: 'talk.webm', type: '' },
      { name: 'notes.txt', type: 'text/plain' },
      { name: 'sound.webm', type: 'video/webm' },
    ];
    const { pictures, videos } = splitMediaFiles(files);
    expect(pictures.map((f) => f.name)).toEqual(['a.png', 'b.jpg', 'notes.txt']);
    expect(videos.map((f) => f.name)).toEqual(['clip.mp4', 'talk.webm', 'sound.webm']);
    // A typed file follows its type, whatever its name says.
    expect(isVideoFile({ name: 'x.mp4', type: 'image/png' })).toBe(false);
    expect(isVideoFile({ name: 'x.mov', type: '' })).toBe(true);
    expect(isVideoFile({ name: 'x.gif', type: '' })).toBe(false);
  });
});

describe('video text', () => {
  const video: ChatVideoInfo = {
    id: 1,
    name: 'clock-h264.mp4',
    bytes: 34_633,
    sent: false,
    codec: 'H.264 (AVC)',
    container: 'MP4',
    width: 256,
    height: 192,
    nativeFps: 24,
    totalFrames: 96,
    durationSeconds: 4,
    sampling: { fps: 1, maxFrames: 64 },
    frames: [0, 32, 63, 95].map((index, i) => ({ id: 10 + i, index, timestamp: index / 24, label: `00:0${Math.trunc(index / 24)}`, thumbnail: new Blob([]) })),
    promptTokens: 1_234,
  };

  it('the facts line: codec, container, size, length, rate, what was sampled and its tokens', () => {
    expect(videoFacts(video)).toBe('H.264 (AVC) in MP4 · 256 x 192 · 4.0 s, 96 frames at 24 fps · 4 sampled at 1 fps (max 64) · 1,234 tokens');
    expect(videoFacts({ ...video, promptTokens: null })).not.toContain('tokens');
  });

  it('durations, rates and frame captions', () => {
    expect(formatDuration(2.002)).toBe('2.0 s');
    expect(formatDuration(65.4)).toBe('1 min 05 s');
    expect(formatFps(30000 / 1001)).toBe('29.97 fps');
    expect(frameCaption(video.frames[2])).toEqual({ time: '00:02', index: 'frame 63' });
  });

  it('progress: reading the container, then frames decoded of the sampled ones', () => {
    expect(progressText({ name: 'clip.mp4', stage: 'reading', decoded: 0, total: 0 })).toBe('Reading clip.mp4…');
    expect(progressText({ name: 'clip.mp4', stage: 'decoding', decoded: 3, total: 10 })).toBe('Decoding clip.mp4: 3 / 10 frames');
  });
});

describe('files refused at once', () => {
  it('one line per file, then how many of the others were added', () => {
    expect(refusedFilesText(['"a.mp4" is not a video.', '"b.webm" has no frames.'], 2, ['video', 'videos'])).toBe(
      '"a.mp4" is not a video.\n"b.webm" has no frames.\nThe other 2 videos were added.',
    );
    expect(refusedFilesText(['"n.txt" is not an image.'], 1, ['picture', 'pictures'])).toBe('"n.txt" is not an image.\nThe other picture was added.');
    expect(refusedFilesText(['"x.mp4" is empty.'], 0, ['video', 'videos'])).toBe('"x.mp4" is empty.');
  });
});
