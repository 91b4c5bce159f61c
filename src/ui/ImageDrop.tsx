import { useEffect, useId, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import type { ImageInfo } from '../worker/api';
import { formatBytes } from './format';

export interface ShownImage {
  info: ImageInfo;
  /** Object URL of the worker's thumbnail; the owner revokes it when the picture changes. */
  thumbnailUrl: string;
}

interface ImageDropProps {
  image: ShownImage | null;
  /** Called with the file the person dropped, picked or pasted; the parent sends it to the worker. */
  onFile: (file: File) => void;
  busy: boolean;
  disabled: boolean;
}

/** First file of a drop or paste, or null. */
function firstFile(list: FileList | null | undefined): File | null {
  return list && list.length > 0 ? list[0] : null;
}

/**
 * Drop zone + file picker + paste (anywhere on the page, unless the focus is in a text field that takes the
 * paste itself) with the current picture's thumbnail. File names are shown as text only.
 */
export function ImageDrop({ image, onFile, busy, disabled }: ImageDropProps) {
  const inputId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const enabled = !disabled && !busy;

  useEffect(() => {
    if (!enabled) return;
    const onPaste = (event: ClipboardEvent) => {
      const file = firstFile(event.clipboardData?.files);
      if (!file) return; // plain text pastes go to the focused field as usual
      event.preventDefault();
      onFile(file);
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [enabled, onFile]);

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    if (!enabled) return;
    const file = firstFile(event.dataTransfer.files);
    if (file) onFile(file);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.target !== event.currentTarget) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      input.current?.click();
    }
  };

  return (
    <div className="image-drop-wrap">
      <div
        className={`image-drop${dragging ? ' dragging' : ''}${enabled ? '' : ' disabled'}`}
        data-testid="image-drop"
        role="button"
        tabIndex={enabled ? 0 : -1}
        aria-disabled={!enabled}
        aria-label="Picture: drop an image here, paste one, or press Enter to choose a file"
        onKeyDown={onKeyDown}
        onClick={(event) => {
          if (enabled && event.target === event.currentTarget) input.current?.click();
        }}
        onDragOver={(event) => {
          event.preventDefault();
          event.dataTransfer.dropEffect = enabled ? 'copy' : 'none';
          if (enabled) setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        {image ? (
          <img
            className="thumbnail"
            src={image.thumbnailUrl}
            alt={`The current picture: ${image.info.name}`}
            data-testid="image-thumbnail"
            onClick={() => enabled && input.current?.click()}
          />
        ) : (
          <span className="drop-hint" aria-hidden="true">
            {busy ? 'Reading the picture…' : 'Drop an image here, paste one, or click to choose'}
          </span>
        )}
      </div>
      <div className="image-meta">
        <label htmlFor={inputId} className="file-button">
          Choose image…
        </label>
        <input
          ref={input}
          id={inputId}
          className="visually-hidden-input"
          type="file"
          accept="image/*"
          disabled={!enabled}
          data-testid="image-input"
          onChange={(event) => {
            const file = firstFile(event.target.files);
            if (file) onFile(file);
            event.target.value = ''; // picking the same file again fires another change
          }}
        />
        {image && (
          <p className="muted small" data-testid="image-name">
            <span className="file-name">{image.info.name}</span> · {image.info.originalWidth} x {image.info.originalHeight} px ·{' '}
            {formatBytes(image.info.bytes)}
            {image.info.scaledDown && ` · scaled to ${image.info.width} x ${image.info.height} before processing`}
          </p>
        )}
        {busy && (
          <p className="muted small" aria-live="polite">
            Reading the picture…
          </p>
        )}
      </div>
    </div>
  );
}
