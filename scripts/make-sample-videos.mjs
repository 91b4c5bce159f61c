// Writes the sample videos with Debian's ffmpeg (the project's setup installs it): small clips whose every frame shows
// its own number and time, so a person can see which frames the sampler chose, and the bad inputs the video tests
// drop into the app. Run again after changing a clip; the files are committed (together a few hundred KB at most).
// `node scripts/make-sample-videos.mjs`
//   public/samples/   clock-h264.mp4 (H.264, 24 fps, 4 s), clock-vp9.webm (VP9, 30 fps, 3 s), videos.json (the list
//                     "Add sample video" reads)
//   tests/data/video/ clock-vp8.webm (VP8, 25 fps, 2 s), clock-ntsc.mp4 (H.264 at 30000/1001 fps, 2 s), hevc.mp4
//                     (H.265: a codec Chromium's WebCodecs does not decode), truncated.mp4 (the H.264 sample cut
//                     short), corrupt.mp4 (its frame data overwritten), not-a-video.mp4 (text), audio-only.webm
//                     (Opus, no video track), zero-frames.webm (the VP9 sample cut after its track header: a video
//                     track without frames)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const samplesDir = join(projectRoot, 'public', 'samples');
const testDir = join(projectRoot, 'tests', 'data', 'video');
const font = '/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf';
// No encoder version, creation time or random ids in the files, so a rerun gives the same bytes where the codec allows.
const bitexact = ['-fflags', '+bitexact', '-flags:v', '+bitexact', '-map_metadata', '-1', '-threads', '1'];

function ffmpeg(args) {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
}

function wrote(path) {
  process.stdout.write(`Wrote ${path} (${readFileSync(path).length} bytes)\n`);
}

/**
 * A `seconds`-long clip at `rate` (an ffmpeg rate: "24" or "30000/1001") of 256 x 192 pixels: a square moving across a
 * dark background, the frame number at the top and the frame's time (H:MM:SS.mmm) at the bottom.
 */
function clockClip(out, rate, seconds, codecArgs) {
  const size = '256x192';
  const filter =
    `[0][1]overlay=x='mod(t*80,W-w)':y='H/2-h/2+30*sin(t*3)':eval=frame:shortest=1,` +
    `drawtext=fontfile=${font}:text='frame %{frame_num}':fontsize=26:fontcolor=white:x=12:y=10,` +
    `drawtext=fontfile=${font}:text='%{pts\\:hms}':fontsize=20:fontcolor=0xbbddff:x=12:y=160`;
  ffmpeg([
    '-f', 'lavfi', '-i', `color=c=0x1b2a49:s=${size}:r=${rate}:d=${seconds}`,
    '-f', 'lavfi', '-i', `color=c=0xf2a541:s=40x40:r=${rate}:d=${seconds}`,
    '-filter_complex', filter, '-an', '-pix_fmt', 'yuv420p', ...codecArgs, ...bitexact, out,
  ]);
  wrote(out);
}

// A key frame every second and B-frames in the H.264 files, so decoding from the key frame before a chosen frame (and
// presentation order differing from decode order) is exercised.
const h264 = ['-c:v', 'libx264', '-profile:v', 'main', '-g', '24', '-bf', '2', '-movflags', '+faststart'];
const vp9 = ['-c:v', 'libvpx-vp9', '-b:v', '150k', '-g', '30', '-row-mt', '0'];
const vp8 = ['-c:v', 'libvpx', '-b:v', '150k', '-g', '25'];

mkdirSync(samplesDir, { recursive: true });
mkdirSync(testDir, { recursive: true });

const mp4 = join(samplesDir, 'clock-h264.mp4');
const webm = join(samplesDir, 'clock-vp9.webm');
clockClip(mp4, '24', 4, h264);
clockClip(webm, '30', 3, vp9);
writeFileSync(
  join(samplesDir, 'videos.json'),
  `${JSON.stringify(
    [
      { file: 'clock-h264.mp4', description: 'H.264 in MP4, 4 s at 24 fps: a moving square, each frame numbered and timed' },
      { file: 'clock-vp9.webm', description: 'VP9 in WebM, 3 s at 30 fps: a moving square, each frame numbered and timed' },
    ],
    null,
    2,
  )}\n`,
);
wrote(join(samplesDir, 'videos.json'));

clockClip(join(testDir, 'clock-vp8.webm'), '25', 2, vp8);
clockClip(join(testDir, 'clock-ntsc.mp4'), '30000/1001', 2, h264);
clockClip(join(testDir, 'hevc.mp4'), '24', 1, ['-c:v', 'libx265', '-x265-params', 'log-level=error:pools=1:frame-threads=1', '-tag:v', 'hvc1']);

// The H.264 sample with its second half gone: the index (moov, at the front) still lists every frame.
const mp4Bytes = readFileSync(mp4);
writeFileSync(join(testDir, 'truncated.mp4'), mp4Bytes.subarray(0, Math.floor(mp4Bytes.length / 2)));
wrote(join(testDir, 'truncated.mp4'));

// The H.264 sample with its frame data overwritten from 2 KB into its mdat box on (a fixed pseudo-random pattern): the
// index and the first bytes of the first key frame are intact, so the file opens and the decoder fails on frame 0.
const corrupt = Buffer.from(mp4Bytes);
let state = 1;
for (let i = mp4Bytes.indexOf(Buffer.from('mdat')) + 2000; i < corrupt.length - 100; i++) {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  corrupt[i] = state >>> 24;
}
writeFileSync(join(testDir, 'corrupt.mp4'), corrupt);
wrote(join(testDir, 'corrupt.mp4'));

writeFileSync(join(testDir, 'not-a-video.mp4'), 'This is a text file with a video file name. It holds no video.\n');
wrote(join(testDir, 'not-a-video.mp4'));

ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'libopus', '-b:a', '16k', ...bitexact, join(testDir, 'audio-only.webm')]);
wrote(join(testDir, 'audio-only.webm'));

// The VP9 sample up to its first Cluster (EBML id 1F 43 B6 75): header, track list and cues, but no frame.
const webmBytes = readFileSync(webm);
const cluster = webmBytes.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));
if (cluster < 0) throw new Error(`${webm} has no Cluster element.`);
writeFileSync(join(testDir, 'zero-frames.webm'), webmBytes.subarray(0, cluster));
wrote(join(testDir, 'zero-frames.webm'));
