/** ffprobe's facts of a video file's first video stream, as the CLI reads them: the tests compare the app's reader with it. */
import { spawnSync } from 'node:child_process';

/** avg_frame_rate (as a number) and the counted packets of the first video stream. */
export function ffprobeFacts(path: string): { nativeFps: number; totalFrames: number } {
  const run = spawnSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=avg_frame_rate,nb_read_packets', '-of', 'json', path],
    { encoding: 'utf8' },
  );
  if (run.error || run.status !== 0) {
    throw new Error(`ffprobe failed on ${path} (${run.error?.message ?? run.stderr}). Install it with: apt-get install -y ffmpeg (npm test's system check does).`);
  }
  const stream = (JSON.parse(run.stdout) as { streams: { avg_frame_rate: string; nb_read_packets: string }[] }).streams[0];
  const [num, den] = stream.avg_frame_rate.split('/').map(Number);
  return { nativeFps: num / den, totalFrames: Number(stream.nb_read_packets) };
}
