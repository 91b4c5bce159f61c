/** Display helpers for numbers the panels show. */

const byteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> "1.5 KiB"; binary units because GPU limits are powers of two. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < byteUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${byteUnits[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** 1234567 -> "1,234,567". */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/**
 * The alert for files left out of one drop, paste or pick: each file's message on its own line (the alert keeps line
 * breaks), then how many of the others were added, e.g. "The other 2 videos were added." `noun` is [one, several].
 */
export function refusedFilesText(messages: readonly string[], added: number, noun: readonly [string, string]): string {
  const kept = added > 0 ? [`The other ${added === 1 ? `${noun[0]} was` : `${added} ${noun[1]} were`} added.`] : [];
  return [...messages, ...kept].join('\n');
}
