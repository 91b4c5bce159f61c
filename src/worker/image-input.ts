/**
 * Turns a file the person dropped into RGB pixels for the image processor, inside the worker
 * (createImageBitmap -> OffscreenCanvas). Every failure becomes a message for people; huge pictures are
 * scaled down while decoding (when the header tells their size) so a 12000 x 12000 file does not need a
 * 576 MB canvas.
 */
import type { RawImageLike } from '../model-io/processor';

export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageInputError';
  }
}

export interface DecodedImage {
  pixels: RawImageLike;
  originalWidth: number;
  originalHeight: number;
  scaledDown: boolean;
  thumbnail: Blob;
}

/** Thumbnails are small: the UI shows them at most this large. */
const thumbnailEdge = 512;
/** Bytes read to find the picture size in the header (JPEG's SOF marker can come after large EXIF blocks). */
const headerBytes = 256 * 1024;

/** Width and height from the header of a PNG, GIF, BMP, WebP or JPEG file; null for anything else. */
export function sniffImageSize(bytes: Uint8Array): { width: number; height: number } | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = (i: number): number => (i < bytes.length ? bytes[i] : -1);
  const ascii = (start: number, text: string): boolean => [...text].every((c, i) => at(start + i) === c.charCodeAt(0));
  if (bytes.length >= 24 && at(0) === 0x89 && ascii(1, 'PNG') && ascii(12, 'IHDR')) {
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes.length >= 10 && ascii(0, 'GIF8')) return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
  if (bytes.length >= 26 && ascii(0, 'BM')) return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  if (bytes.length >= 30 && ascii(0, 'RIFF') && ascii(8, 'WEBP')) {
    if (ascii(12, 'VP8X')) return { width: 1 + (at(24) | (at(25) << 8) | (at(26) << 16)), height: 1 + (at(27) | (at(28) << 8) | (at(29) << 16)) };
    if (ascii(12, 'VP8 ')) return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    if (ascii(12, 'VP8L') && bytes.length >= 25) {
      const bits = view.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    return null;
  }
  if (at(0) === 0xff && at(1) === 0xd8) {
    // Walk the JPEG segments to the first start-of-frame marker (C0-CF except C4 DHT, C8 JPG, CC DAC).
    let i = 2;
    while (i + 9 < bytes.length) {
      if (at(i) !== 0xff) return null;
      const marker = at(i + 1);
      if (marker === 0xff) {
        i += 1;
        continue;
      }
      const length = view.getUint16(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: view.getUint16(i + 7), height: view.getUint16(i + 5) };
      }
      i += 2 + length;
    }
  }
  return null;
}

/** Size that fits `maxEdge` on the longest side, keeping the aspect ratio (never enlarges). */
export function fitWithin(width: number, height: number, maxEdge: number): { width: number; height: number } {
  const scale = Math.min(1, maxEdge / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function describe(name: string): string {
  return name ? `"${name}"` : 'The file';
}

/**
 * Decodes `blob` and returns RGB pixels no larger than `maxEdge` on the longest side. Rejects with an
 * ImageInputError for empty files, files of a non-image type and data the browser cannot decode.
 */
export async function decodeImage(blob: Blob, name: string, maxEdge: number): Promise<DecodedImage> {
  if (blob.size === 0) throw new ImageInputError(`${describe(name)} is empty (0 bytes). Choose a PNG, JPEG, WebP, GIF or BMP picture.`);
  if (blob.type && !blob.type.startsWith('image/')) {
    throw new ImageInputError(`${describe(name)} is not an image (its type is ${blob.type}). Choose a PNG, JPEG, WebP, GIF or BMP picture.`);
  }
  const header = sniffImageSize(new Uint8Array(await blob.slice(0, headerBytes).arrayBuffer()));
  let bitmap: ImageBitmap;
  try {
    if (header && header.width > 0 && header.height > 0 && Math.max(header.width, header.height) > maxEdge) {
      const target = fitWithin(header.width, header.height, maxEdge);
      bitmap = await createImageBitmap(blob, { resizeWidth: target.width, resizeHeight: target.height, resizeQuality: 'high' });
    } else {
      bitmap = await createImageBitmap(blob);
    }
  } catch (error) {
    const reason = error instanceof Error && error.message ? ` (${error.message})` : '';
    throw new ImageInputError(
      `${describe(name)} could not be decoded as a picture${reason}. It may be damaged or not an image; choose a PNG, JPEG, WebP, GIF or BMP file.`,
    );
  }
  try {
    const originalWidth = header?.width ?? bitmap.width;
    const originalHeight = header?.height ?? bitmap.height;
    if (bitmap.width === 0 || bitmap.height === 0) throw new ImageInputError(`${describe(name)} has no pixels (${bitmap.width} x ${bitmap.height}).`);
    // The header may be missing (unknown format): then scale while drawing.
    const size = fitWithin(bitmap.width, bitmap.height, maxEdge);
    const canvas = new OffscreenCanvas(size.width, size.height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new ImageInputError('This browser cannot draw pictures in a worker (no OffscreenCanvas 2D context).');
    context.drawImage(bitmap, 0, 0, size.width, size.height);
    const rgba = context.getImageData(0, 0, size.width, size.height).data;
    // The processor wants RGB; alpha is dropped as PIL's convert('RGB') does.
    const rgb = new Uint8ClampedArray(size.width * size.height * 3);
    for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
      rgb[q] = rgba[p];
      rgb[q + 1] = rgba[p + 1];
      rgb[q + 2] = rgba[p + 2];
    }
    const thumbSize = fitWithin(size.width, size.height, thumbnailEdge);
    const thumbCanvas = new OffscreenCanvas(thumbSize.width, thumbSize.height);
    thumbCanvas.getContext('2d')?.drawImage(canvas, 0, 0, thumbSize.width, thumbSize.height);
    const thumbnail = await thumbCanvas.convertToBlob({ type: 'image/png' });
    return {
      pixels: { data: rgb, width: size.width, height: size.height, channels: 3 },
      originalWidth,
      originalHeight,
      scaledDown: size.width < originalWidth || size.height < originalHeight,
      thumbnail,
    };
  } finally {
    bitmap.close();
  }
}
